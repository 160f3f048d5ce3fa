import assert from "node:assert/strict";
import { initialTransition, transition } from "xstate";
import { totalMounts, type VolumeContext, volumeMachine } from "../../machines/volume_machine.ts";
import { createEngine, emittedIntents } from "../../src/engine/engine.ts";
import {
  EffectFailedError,
  IllegalStateError,
  InvalidRequestError,
  NotFoundError,
  UnavailableError,
} from "../../src/engine/errors.ts";
import { createVolumeEffects } from "../../src/engine/volume_effects.ts";
import { createMemoryStore } from "../../src/log/memory_store.ts";
import type { EventStore, LogRecord } from "../../src/log/store.ts";
import { createRecordingBackend } from "../helpers/recording_backend.ts";
import { assertSameData } from "../helpers/same_json.ts";

function setupEngine(records: LogRecord[] = []) {
  const store = createMemoryStore(records);
  const fake = createRecordingBackend();
  let now = 1000;
  const engine = createEngine({
    store,
    effects: { volume: createVolumeEffects(fake.backend) },
    clock: () => ++now,
  });
  return { engine, store, ...fake };
}

const context = (snapshot: { context: unknown }) => snapshot.context as VolumeContext;
const types = (records: LogRecord[]) => records.map((record) => `${record.actor} ${record.type}`);

Deno.test("xstate returns emitted intents as xstate.emit actions and runs none of them", () => {
  const [start] = initialTransition(volumeMachine, { name: "db" });
  const [, actions] = transition(volumeMachine, start, { type: "volume.create", opts: {}, at: 1 });
  assert.deepEqual(actions.map((action) => action.type), ["xstate.emit"]);
  assert.deepEqual(emittedIntents(actions), [{ type: "intent.create", volume: "db", opts: {} }]);
});

Deno.test("engine logs intent then outcome around one backend effect", async () => {
  const { engine, store, calls } = setupEngine();
  const snapshot = await engine.dispatch("volume/db", {
    type: "volume.create",
    opts: { mode: "0700" },
  });
  assert.equal(snapshot.value, "unmounted");
  assert.equal(context(snapshot).mountpoint, "/fake/db/_data");
  assert.deepEqual(calls, [{ op: "create", name: "db" }]);
  assertSameData(store.all.map(({ seq, at, type, data }) => ({ seq, at, type, data })), [
    { seq: 1, at: 1001, type: "volume.create", data: { opts: { mode: "0700" } } },
    { seq: 2, at: 1002, type: "effect.succeeded", data: { mountpoint: "/fake/db/_data" } },
  ]);
});

Deno.test("engine answers not found for an unknown entity and keeps nothing", async () => {
  const { engine, store, calls } = setupEngine();
  await assert.rejects(
    () => engine.dispatch("volume/nope", { type: "volume.mount", mountId: "a" }),
    (error: unknown) =>
      error instanceof NotFoundError && error.message === 'Volume "nope" not found',
  );
  await assert.rejects(() => engine.read("volume/nope"), NotFoundError);
  assert.deepEqual(engine.list("volume"), []);
  assert.deepEqual(store.all, []);
  assert.deepEqual(calls, []);
});

Deno.test("engine refuses bad options before logging or touching the backend", async () => {
  const { engine, store, calls } = setupEngine();
  await assert.rejects(
    () => engine.dispatch("volume/db", { type: "volume.create", opts: { size: "1G" } }),
    (error: unknown) =>
      error instanceof InvalidRequestError &&
      error.message === 'Cannot create volume "db": unknown option "size"',
  );
  assert.deepEqual(store.all, []);
  assert.deepEqual(calls, []);
  assert.deepEqual(engine.list("volume"), []);
});

Deno.test("engine refuses what the machine refuses, logging nothing", async () => {
  const { engine, store } = setupEngine();
  await engine.dispatch("volume/db", { type: "volume.create", opts: {} });
  await engine.dispatch("volume/db", { type: "volume.mount", mountId: "a" });
  const before = store.all.length;
  await assert.rejects(
    () => engine.dispatch("volume/db", { type: "volume.remove" }),
    (error: unknown) =>
      error instanceof IllegalStateError &&
      error.message === 'Cannot remove volume "db": in use by 1 mount',
  );
  await assert.rejects(
    () => engine.dispatch("volume/db", { type: "volume.unmount", mountId: "b" }),
    /mount ID "b" does not hold it/,
  );
  assert.equal(store.all.length, before);
  assert.deepEqual((await engine.read("volume/db")).context.mounts.toJS(), { a: 1 });
});

Deno.test("engine treats create of an existing volume as done, logging nothing", async () => {
  const { engine, store, calls } = setupEngine();
  await engine.dispatch("volume/db", { type: "volume.create", opts: {} });
  const again = await engine.dispatch("volume/db", { type: "volume.create", opts: {} });
  assert.equal(again.value, "unmounted");
  assert.equal(store.all.length, 2);
  assert.equal(calls.length, 1);
});

Deno.test("engine logs a failed effect, rolls the actor back and says why", async () => {
  const { engine, store, fail } = setupEngine();
  await engine.dispatch("volume/db", { type: "volume.create", opts: {} });
  fail.add("mount");
  await assert.rejects(
    () => engine.dispatch("volume/db", { type: "volume.mount", mountId: "a" }),
    (error: unknown) =>
      error instanceof EffectFailedError &&
      error.message === 'Cannot mount volume "db": mount failed on purpose',
  );
  assert.deepEqual(types(store.all).slice(2), [
    "volume/db volume.mount",
    "volume/db effect.failed",
  ]);
  const snapshot = await engine.read("volume/db");
  assert.equal(snapshot.value, "unmounted");
  assert.deepEqual(context(snapshot).mounts.toJS(), {});
});

Deno.test("engine forgets a volume whose creation failed", async () => {
  const { engine, fail } = setupEngine();
  fail.add("create");
  await assert.rejects(
    () => engine.dispatch("volume/db", { type: "volume.create", opts: {} }),
    EffectFailedError,
  );
  assert.deepEqual(engine.list("volume"), []);
  await assert.rejects(() => engine.read("volume/db"), NotFoundError);
});

Deno.test("engine counts 50 parallel mounts and 50 unmounts of one volume exactly", async () => {
  const { engine, calls, gates } = setupEngine();
  await engine.dispatch("volume/db", { type: "volume.create", opts: {} });
  // Hold the first mount's effect open so that the other 49 pile up in the mailbox behind it.
  const gate = Promise.withResolvers<void>();
  gates.push(gate.promise);
  const ids = Array.from({ length: 50 }, (_, n) => `mount-${n}`);
  const mounts = ids.map((id) =>
    engine.dispatch("volume/db", { type: "volume.mount", mountId: id })
  );
  gate.resolve();
  gates.length = 0;
  const afterMount = (await Promise.all(mounts)).map((snapshot) => totalMounts(context(snapshot)));
  assert.deepEqual(afterMount, ids.map((_, n) => n + 1), "each mount saw the count one higher");
  const unmounts = ids.map((id) =>
    engine.dispatch("volume/db", { type: "volume.unmount", mountId: id })
  );
  const afterUnmount = (await Promise.all(unmounts)).map((s) => totalMounts(context(s)));
  assert.deepEqual(afterUnmount, ids.map((_, n) => 49 - n));
  const end = await engine.read("volume/db");
  assert.equal(end.value, "unmounted");
  assert.deepEqual(context(end).mounts.toJS(), {});
  assert.deepEqual(calls.map((call) => call.op), ["create", "mount", "unmount"]);
});

Deno.test("engine rebuilt from the log matches the live one and calls no backend", async () => {
  const live = setupEngine();
  await live.engine.dispatch("volume/a", { type: "volume.create", opts: { uid: "7" } });
  await live.engine.dispatch("volume/b", { type: "volume.create", opts: {} });
  await live.engine.dispatch("volume/a", { type: "volume.mount", mountId: "x" });
  await live.engine.dispatch("volume/a", { type: "volume.mount", mountId: "x" });
  await live.engine.dispatch("volume/a", { type: "volume.mount", mountId: "y" });
  await live.engine.dispatch("volume/b", { type: "volume.remove" });
  await live.engine.dispatch("volume/c", { type: "volume.create", opts: {} });
  const replayed = setupEngine(live.store.all);
  const view = (engine: typeof live.engine) =>
    engine.list("volume").map(([id, snapshot]) => [id, snapshot.value, snapshot.context]);
  assert.deepEqual(view(replayed.engine), view(live.engine));
  assert.deepEqual(replayed.calls, []);
  assert.deepEqual(context(await replayed.engine.read("volume/a")).mounts.toJS(), { x: 2, y: 1 });
});

Deno.test("engine creates a fresh volume under the name of a removed one", async () => {
  const { engine } = setupEngine();
  await engine.dispatch("volume/db", { type: "volume.create", opts: { mode: "0700" } });
  await engine.dispatch("volume/db", { type: "volume.remove" });
  await assert.rejects(() => engine.read("volume/db"), NotFoundError);
  const fresh = await engine.dispatch("volume/db", { type: "volume.create", opts: {} });
  assertSameData(context(fresh).opts, {});
});

Deno.test("engine answers unavailable when the log cannot append", async () => {
  const store: EventStore = {
    ...createMemoryStore(),
    append: () => Promise.reject(new Error("disk full")),
  };
  const { backend, calls } = createRecordingBackend();
  const engine = createEngine({ store, effects: { volume: createVolumeEffects(backend) } });
  await assert.rejects(
    () => engine.dispatch("volume/db", { type: "volume.create", opts: {} }),
    UnavailableError,
  );
  assert.deepEqual(calls, [], "no effect runs before its intent is durable");
});

Deno.test("engine refuses new commands once draining", async () => {
  const { engine } = setupEngine();
  await engine.drain();
  await assert.rejects(
    () => engine.dispatch("volume/db", { type: "volume.create", opts: {} }),
    UnavailableError,
  );
});

Deno.test("engine drain waits for queued commands of busy actors, then returns", async () => {
  const { engine } = setupEngine();
  await engine.dispatch("volume/db", { type: "volume.create", opts: {} });
  const mounts = Array.from(
    { length: 20 },
    (_, n) => engine.dispatch("volume/db", { type: "volume.mount", mountId: `m${n}` }),
  );
  await engine.drain();
  const settled = await Promise.allSettled(mounts);
  assert.deepEqual(settled.map((result) => result.status), mounts.map(() => "fulfilled"));
});

Deno.test("engine decides the next command of an actor while the last one's event syncs", async () => {
  const store = createMemoryStore();
  const gate = Promise.withResolvers<void>();
  const slow: EventStore = {
    ...store,
    get lastSeq() {
      return store.lastSeq;
    },
    append: (entry) => store.append(entry).then(async (record) => (await gate.promise, record)),
  };
  const { backend } = createRecordingBackend();
  const engine = createEngine({ store: slow, effects: { volume: createVolumeEffects(backend) } });
  const created = engine.dispatch("volume/db", { type: "volume.create", opts: {} });
  gate.resolve();
  await created;
  await engine.dispatch("volume/db", { type: "volume.mount", mountId: "first" });
  const held = Promise.withResolvers<void>();
  slow.append = (entry) => store.append(entry).then(async (record) => (await held.promise, record));
  let answered = 0;
  const mounts = Array.from(
    { length: 10 },
    (_, n) =>
      engine.dispatch("volume/db", { type: "volume.mount", mountId: `m${n}` }).then(() =>
        answered++
      ),
  );
  const deadline = Date.now() + 5_000;
  while (store.all.length < 4 + 10) {
    assert.ok(Date.now() < deadline, `only ${store.all.length - 4} of 10 mounts reached the log`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  assert.equal(answered, 0, "nobody is answered before the disk says so");
  held.resolve();
  await Promise.all(mounts);
  assert.equal(answered, 10);
});

Deno.test("engine refuses everything once an append failed", async () => {
  let fail = false;
  const store = createMemoryStore();
  const flaky: EventStore = {
    ...store,
    append: (entry) => fail ? Promise.reject(new Error("EIO")) : store.append(entry),
  };
  const { backend } = createRecordingBackend();
  const engine = createEngine({ store: flaky, effects: { volume: createVolumeEffects(backend) } });
  await engine.dispatch("volume/db", { type: "volume.create", opts: {} });
  fail = true;
  await assert.rejects(
    () => engine.dispatch("volume/db", { type: "volume.mount", mountId: "a" }),
    UnavailableError,
  );
  fail = false;
  await assert.rejects(
    () => engine.dispatch("volume/other", { type: "volume.create", opts: {} }),
    /the log failed; restart Berth/,
  );
});

Deno.test("engine.observe hears each durable event in log order, with the snapshot it made", async () => {
  const { engine, store } = setupEngine();
  const heard: string[] = [];
  const stop = engine.observe((record, snapshot) => {
    heard.push(`${record.seq} ${record.type} → ${String(snapshot.value)}`);
  });
  // A faulty observer is reported, never taken for a failed append.
  const warned: string[] = [];
  const faulty = createEngine({
    store: createMemoryStore(),
    effects: { volume: createVolumeEffects(createRecordingBackend().backend) },
    warn: (message) => warned.push(message),
  });
  faulty.observe(() => {
    throw new Error("observer bug");
  });
  await faulty.dispatch("volume/x", { type: "volume.create", opts: {} });
  assert.match(warned.join("\n"), /observer of the engine failed: .*observer bug/);
  await faulty.dispatch("volume/x", { type: "volume.mount", mountId: "a" });

  await engine.dispatch("volume/db", { type: "volume.create", opts: {} });
  await engine.dispatch("volume/db", { type: "volume.mount", mountId: "a" });
  await Promise.all([
    engine.dispatch("volume/db", { type: "volume.mount", mountId: "b" }),
    engine.dispatch("volume/db", { type: "volume.mount", mountId: "c" }),
  ]);
  stop();
  await engine.dispatch("volume/db", { type: "volume.unmount", mountId: "c" });
  assert.deepEqual(heard, [
    "1 volume.create → creating",
    "2 effect.succeeded → unmounted",
    "3 volume.mount → mounting",
    "4 effect.succeeded → mounted",
    "5 volume.mount → mounted",
    "6 volume.mount → mounted",
  ]);
  assert.equal(store.all.length, 7);
});

Deno.test("engine refuses an event its schema does not accept, naming actor and field", async () => {
  const { engine, store, calls } = setupEngine();
  await engine.dispatch("volume/db", { type: "volume.create", opts: {} });
  const before = store.all.length;
  for (
    const [event, field] of [
      [{ type: "volume.mount", mountId: "" }, /mountId: /],
      [{ type: "volume.mount", mountId: 7 }, /mountId: /],
      [{ type: "volume.create", opts: { mode: 7 } }, /opts\.mode: /],
      [{ type: "volume.frobnicate" }, /type: /],
    ] as const
  ) {
    await assert.rejects(
      () => engine.dispatch("volume/db", event),
      (error: unknown) => {
        assert.ok(error instanceof InvalidRequestError, String(error));
        assert.match(error.message, new RegExp(`^Cannot record ${event.type} of volume/db: `));
        assert.match(error.message, field);
        return true;
      },
    );
  }
  assert.equal(store.all.length, before, "nothing was logged");
  assert.deepEqual(calls.map((call) => call.op), ["create"]);
});

Deno.test("engine logs a backend answer its schema refuses as a failed effect", async () => {
  const store = createMemoryStore();
  const fake = createRecordingBackend();
  const effects = createVolumeEffects(fake.backend);
  const engine = createEngine({
    store,
    effects: {
      volume: {
        ...effects,
        // A backend that answers a number where the machine wants a mountpoint string.
        run: (intent) => effects.run(intent).then((fields) => ({ ...fields, mountpoint: 42 })),
      },
    },
  });
  await assert.rejects(
    () => engine.dispatch("volume/db", { type: "volume.create", opts: {} }),
    /Cannot create volume "db": the backend's answer does not fit: mountpoint: /,
  );
  assert.deepEqual(store.all.map((record) => record.type), ["volume.create", "effect.failed"]);
  // And the log replays.
  assert.equal(createEngine({ store, effects: {} }).list("volume").length, 0);
});
