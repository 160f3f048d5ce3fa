import assert from "node:assert/strict";
import type { VolumeContext } from "../../machines/volume_machine.ts";
import { createEngine } from "../../src/engine/engine.ts";
import { createVolumeEffects } from "../../src/engine/volume_effects.ts";
import { createMemoryStore } from "../../src/log/memory_store.ts";
import type { LogRecord } from "../../src/log/store.ts";
import { createRecordingBackend } from "../helpers/recording_backend.ts";

type Fields = { type: string; [field: string]: unknown };

/** Records for volume "db" as if these events had been logged, the last maybe without outcome. */
function log(...events: Fields[]): LogRecord[] {
  return events.map(({ type, ...data }, index) => ({
    seq: index + 1,
    at: 100 + index,
    actor: "volume/db",
    type,
    v: 1,
    data,
  }));
}

const create: Fields = { type: "volume.create", opts: {} };
const ok: Fields = { type: "effect.succeeded", mountpoint: "/fake/db/_data" };
const mount = (mountId: string): Fields => ({ type: "volume.mount", mountId });
const unmount = (mountId: string): Fields => ({ type: "volume.unmount", mountId });
const remove: Fields = { type: "volume.remove" };

async function reconcileAfter(records: LogRecord[], host: "present" | "absent") {
  const store = createMemoryStore(records);
  const fake = createRecordingBackend();
  if (host === "present") fake.host.add("db");
  const engine = createEngine({ store, effects: { volume: createVolumeEffects(fake.backend) } });
  const report = await engine.reconcile();
  const added = store.all.slice(records.length).map(({ type, data }) => ({ type, ...data }));
  const live = engine.list("volume");
  const [, snapshot] = live[0] ?? [undefined, undefined];
  return { report, added, snapshot, calls: fake.calls };
}

Deno.test("reconcile settles a create cut short by a crash from what the host shows", async (t) => {
  await t.step("directory there: the create happened", async () => {
    const { added, snapshot, report } = await reconcileAfter(log(create), "present");
    assert.deepEqual(added, [{ type: "effect.succeeded", mountpoint: "/fake/db/_data" }]);
    assert.equal(snapshot?.value, "unmounted");
    assert.deepEqual(report, [{ actor: "volume/db", events: ["effect.succeeded"] }]);
  });
  await t.step("no directory: it did not, and the volume is forgotten", async () => {
    const { added, snapshot } = await reconcileAfter(log(create), "absent");
    assert.equal(added[0]?.type, "effect.failed");
    assert.equal(snapshot, undefined);
  });
});

Deno.test("reconcile settles an unanswered mount as not held, and undoes it", async () => {
  const { added, snapshot, calls } = await reconcileAfter(log(create, ok, mount("a")), "present");
  assert.equal(added[0]?.type, "effect.failed");
  assert.equal(snapshot?.value, "unmounted");
  assert.deepEqual((snapshot?.context as VolumeContext).mounts.toJS(), {});
  // The mount is never repeated; what the backend may have done of it is undone.
  assert.deepEqual(calls, [{ op: "unmount", name: "db" }]);
});

Deno.test("reconcile keeps the holder of an unanswered last unmount", async () => {
  const records = log(create, ok, mount("a"), ok, unmount("a"));
  const { added, snapshot } = await reconcileAfter(records, "present");
  assert.equal(added[0]?.type, "effect.failed");
  assert.equal(snapshot?.value, "mounted");
  assert.deepEqual((snapshot?.context as VolumeContext).mounts.toJS(), { a: 1 });
});

Deno.test("reconcile settles a removal cut short from what the host shows", async (t) => {
  await t.step("directory gone: removed", async () => {
    const { added, snapshot } = await reconcileAfter(log(create, ok, remove), "absent");
    assert.deepEqual(added, [{ type: "effect.succeeded" }]);
    assert.equal(snapshot, undefined);
  });
  await t.step("directory there: still a volume", async () => {
    const { added, snapshot } = await reconcileAfter(log(create, ok, remove), "present");
    assert.equal(added[0]?.type, "effect.failed");
    assert.equal(snapshot?.value, "unmounted");
  });
});

Deno.test("reconcile records a vanished directory instead of re-creating it", async () => {
  const { added, snapshot, calls } = await reconcileAfter(
    log(create, ok, mount("a"), ok),
    "absent",
  );
  assert.deepEqual(added, [{
    type: "volume.vanished",
    reason: 'directory of volume "db" is gone',
  }]);
  assert.equal(snapshot?.value, "missing");
  assert.deepEqual(calls, []);
});

Deno.test("reconcile records a directory that came back", async () => {
  const records = log(create, ok, { type: "volume.vanished", reason: "gone" });
  const { added, snapshot } = await reconcileAfter(records, "present");
  assert.deepEqual(added, [{ type: "volume.reappeared" }]);
  assert.equal(snapshot?.value, "unmounted");
});

Deno.test("reconcile leaves a settled volume that matches the host alone", async () => {
  const { added, report } = await reconcileAfter(log(create, ok, mount("a"), ok), "present");
  assert.deepEqual(added, []);
  assert.deepEqual(report, []);
});

Deno.test("reconcile looks at the host once for all volumes, not once per volume", async () => {
  const records: LogRecord[] = [];
  for (let i = 0; i < 300; i++) {
    for (const { type, ...data } of [create, ok]) {
      records.push({ seq: records.length + 1, at: 1, actor: `volume/v${i}`, type, v: 1, data });
    }
  }
  const fake = createRecordingBackend();
  for (let i = 0; i < 300; i += 2) fake.host.add(`v${i}`); // every other directory is gone
  const store = createMemoryStore(records);
  const engine = createEngine({ store, effects: { volume: createVolumeEffects(fake.backend) } });
  const report = await engine.reconcile();
  assert.equal(fake.surveys.count, 1);
  assert.equal(report.length, 150);
  assert.ok(
    report.every(({ actor, events }) =>
      Number(actor.slice("volume/v".length)) % 2 === 1 && events[0] === "volume.vanished"
    ),
  );
});
