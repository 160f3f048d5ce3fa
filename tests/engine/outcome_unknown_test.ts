// An effect whose backend died in the middle of it: no outcome is recorded, the caller hears that
// it is unknown, and once the backend is back the actor is settled by reconcile; commands for it
// wait for that rather than meet a half-settled volume.
import assert from "node:assert/strict";
import { BackendLostError } from "../../src/backends/volume_backend.ts";
import { createEngine } from "../../src/engine/engine.ts";
import { UnavailableError } from "../../src/engine/errors.ts";
import { createVolumeEffects } from "../../src/engine/volume_effects.ts";
import { createMemoryStore } from "../../src/log/memory_store.ts";
import { createRecordingBackend } from "../helpers/recording_backend.ts";

function setUp() {
  const store = createMemoryStore([]);
  const fake = createRecordingBackend();
  const back = Promise.withResolvers<void>();
  let lose = true;
  const mount = fake.backend.mount;
  fake.backend.mount = async (name) => {
    const answer = await mount(name);
    if (!lose) return answer;
    lose = false;
    throw new BackendLostError(`volume backend "far" exited during Mount`, () => back.promise);
  };
  const engine = createEngine({ store, effects: { volume: createVolumeEffects(fake.backend) } });
  const types = () => store.all.map((record) => record.type);
  return { engine, fake, back, types };
}

Deno.test("a mount whose backend died is settled once the backend is back", async () => {
  const { engine, fake, back, types } = setUp();
  await engine.dispatch("volume/db", { type: "volume.create", opts: {} });
  await assert.rejects(
    engine.dispatch("volume/db", { type: "volume.mount", mountId: "a" }),
    (error: Error) =>
      error instanceof UnavailableError &&
      error.message === `Cannot mount volume "db": volume backend "far" exited during Mount`,
  );
  // No outcome: the volume waits in flight, and a read of it waits for the settling.
  assert.deepEqual(types().slice(-1), ["volume.mount"]);
  assert.equal(engine.list("volume")[0]?.[1].value, "mounting");
  let read = false;
  const reading = engine.read("volume/db").then((snapshot) => (read = true, snapshot));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(read, false, "the read waits for the backend");

  back.resolve();
  const settled = await reading;
  assert.equal(settled.value, "unmounted");
  assert.deepEqual(types().slice(-1), ["effect.failed"]);
  assert.deepEqual(fake.calls.slice(-1), [{ op: "unmount", name: "db" }], "undone in the backend");
  const again = await engine.dispatch("volume/db", { type: "volume.mount", mountId: "b" });
  assert.equal(again.value, "mounted");
  await engine.drain();
});

Deno.test("a stop while the backend is away leaves the actor for the next start", async () => {
  const { engine, types } = setUp();
  await engine.dispatch("volume/db", { type: "volume.create", opts: {} });
  await assert.rejects(engine.dispatch("volume/db", { type: "volume.mount", mountId: "a" }));
  const started = Date.now();
  await engine.drain(); // does not wait for a backend that never comes back
  assert.ok(Date.now() - started < 1000);
  assert.deepEqual(types().slice(-1), ["volume.mount"]);
});
