// actorHistory over real logs: a real engine on a file store, read back with readLog.
import assert from "node:assert/strict";
import { createEngine, type Engine } from "../../src/engine/engine.ts";
import { createVolumeEffects } from "../../src/engine/volume_effects.ts";
import { actorHistory, actorStateAt } from "../../src/inspect/history.ts";
import { MASK } from "../../src/inspect/view.ts";
import { openFileStore } from "../../src/log/file_store.ts";
import { readLog } from "../../src/log/reader.ts";
import type { EventStore } from "../../src/log/store.ts";
import { createRecordingBackend } from "../helpers/recording_backend.ts";
import { tempDir } from "../helpers/temp_dir.ts";

type Fake = ReturnType<typeof createRecordingBackend>;

/** Runs `drive` against a real engine on a file store in `dir` (a backend that takes any option). */
async function withEngine(
  dir: string,
  drive: (engine: Engine, fake: Fake, store: EventStore) => Promise<void>,
) {
  const store = await openFileStore({ dir, warn: () => {}, segmentBytes: 500 });
  const fake = createRecordingBackend();
  let now = 1_700_000_000_000;
  const engine = createEngine({
    store,
    effects: { volume: createVolumeEffects({ ...fake.backend, checkOptions() {} }) },
    clock: () => ++now,
  });
  try {
    await drive(engine, fake, store);
  } finally {
    await store.close();
  }
}

/** Through JSON, as the API and command line send it (masked copies have no prototype). */
const plain = (value: unknown) => JSON.parse(JSON.stringify(value));

const ignoreFailure = (promise: Promise<unknown>) => promise.catch(() => {});

Deno.test("actorHistory gives each event, the state after it and what became of it", async () => {
  await using dir = await tempDir();
  await withEngine(dir.path, async (engine, fake) => {
    await engine.dispatch("volume/other", { type: "volume.create", opts: {} });
    await engine.dispatch("volume/db", { type: "volume.create", opts: {} });
    fake.fail.add("mount");
    await ignoreFailure(engine.dispatch("volume/db", { type: "volume.mount", mountId: "m1" }));
    fake.fail.delete("mount");
    await engine.dispatch("volume/db", { type: "volume.mount", mountId: "m1" });
    await engine.dispatch("volume/db", { type: "volume.mount", mountId: "m2" });
  });
  const { actor, entries } = await actorHistory(readLog(dir.path), "volume/db");
  assert.deepEqual(entries.map(({ type, from, state, outcome }) => [type, from, state, outcome]), [
    ["volume.create", "absent", "creating", "succeeded"],
    ["effect.succeeded", "creating", "unmounted", "succeeded"],
    ["volume.mount", "unmounted", "mounting", "failed: mount failed on purpose"],
    ["effect.failed", "mounting", "unmounted", "failed: mount failed on purpose"],
    ["volume.mount", "unmounted", "mounting", "succeeded"],
    ["effect.succeeded", "mounting", "mounted", "succeeded"],
    ["volume.mount", "mounted", "mounted", "applied"],
  ]);
  assert.deepEqual(plain(entries[2]!.data), { mountId: "m1" });
  assert.equal(entries[0]!.seq, 3, "volume/other's records are passed over");
  assert.equal(actor?.state, "mounted");
});

Deno.test("actorHistory covers every life of a volume removed and created again", async () => {
  await using dir = await tempDir();
  await withEngine(dir.path, async (engine) => {
    await engine.dispatch("volume/db", { type: "volume.create", opts: { mode: "0700" } });
    await engine.dispatch("volume/db", { type: "volume.remove" });
    await engine.dispatch("volume/db", { type: "volume.create", opts: {} });
  });
  const { actor, entries, holders } = await actorHistory(readLog(dir.path), "volume/db");
  assert.deepEqual(entries.map((entry) => `${entry.from}->${entry.state}`), [
    "absent->creating",
    "creating->unmounted",
    "unmounted->removing",
    "removing->gone",
    "absent->creating",
    "creating->unmounted",
  ]);
  assert.deepEqual(plain(actor?.context), {
    name: "db",
    opts: {},
    createdAt: entries[4]!.at,
    mountpoint: "/fake/db/_data",
    mounts: {},
    held: 0,
    pending: null,
    problem: null,
  });
  assert.deepEqual(holders, []);
  const gone = await actorStateAt(readLog(dir.path), "volume/db", entries[3]!.seq);
  assert.equal(gone, null, "between its lives the volume does not exist");
  const first = await actorStateAt(readLog(dir.path), "volume/db", entries[1]!.seq);
  assert.deepEqual(plain((first?.context as { opts: unknown }).opts), { mode: "0700" });
});

Deno.test("actorHistory lists the mount IDs that hold a volume and since which event", async () => {
  await using dir = await tempDir();
  await withEngine(dir.path, async (engine) => {
    await engine.dispatch("volume/db", { type: "volume.create", opts: {} });
    await engine.dispatch("volume/db", { type: "volume.mount", mountId: "m1" });
    await engine.dispatch("volume/db", { type: "volume.mount", mountId: "m2" });
    await engine.dispatch("volume/db", { type: "volume.mount", mountId: "m3" });
    await engine.dispatch("volume/db", { type: "volume.mount", mountId: "m3" });
    await engine.dispatch("volume/db", { type: "volume.unmount", mountId: "m1" });
  });
  const { entries, holders } = await actorHistory(readLog(dir.path), "volume/db");
  const seqOf = (type: string, mountId: string) =>
    entries.find((entry) =>
      entry.type === type && (entry.data as { mountId?: string }).mountId === mountId
    )!;
  const m2 = seqOf("volume.mount", "m2");
  const m3 = seqOf("volume.mount", "m3");
  assert.deepEqual(holders, [
    { mountId: "m2", count: 1, since: m2.at, seq: m2.seq },
    { mountId: "m3", count: 2, since: m3.at, seq: m3.seq },
  ]);
  // m1 was taken through mounting: it held the volume once the mount succeeded.
  const before = await actorHistory(readLog(dir.path, { to: m2.seq - 1 }), "volume/db");
  const m1Held = entries.find((entry) => entry.from === "mounting")!;
  assert.deepEqual(before.holders, [{
    mountId: "m1",
    count: 1,
    since: m1Held.at,
    seq: m1Held.seq,
  }]);
});

Deno.test("actorHistory masks secret options in the data and the view", async () => {
  await using dir = await tempDir();
  await withEngine(dir.path, async (engine) => {
    await engine.dispatch("volume/db", {
      type: "volume.create",
      opts: { password: "hunter2", mode: "0700" },
    });
  });
  const history = await actorHistory(readLog(dir.path), "volume/db");
  assert.deepEqual(plain(history.entries[0]!.data), { opts: { password: MASK, mode: "0700" } });
  assert.deepEqual(plain((history.actor?.context as { opts: unknown }).opts), {
    password: MASK,
    mode: "0700",
  });
  assert.doesNotMatch(JSON.stringify(history), /hunter2/);
});

Deno.test("actorHistory marks an intent without outcome in flight and an ignored event", async () => {
  await using dir = await tempDir();
  await withEngine(dir.path, async (engine, _fake, store) => {
    await engine.dispatch("volume/db", { type: "volume.create", opts: {} });
    // As a crash leaves them: an event that changes nothing, an intent with no outcome yet.
    const entry = { actor: "volume/db", v: 1 } as const;
    await store.append({ ...entry, at: 5, type: "volume.unmount", data: { mountId: "x" } });
    await store.append({ ...entry, at: 6, type: "volume.remove", data: {} });
  });
  const { actor, entries } = await actorHistory(readLog(dir.path), "volume/db");
  assert.deepEqual(entries.slice(2).map(({ type, state, outcome }) => [type, state, outcome]), [
    ["volume.unmount", "unmounted", "ignored"],
    ["volume.remove", "removing", "in flight"],
  ]);
  assert.equal(actor?.state, "removing");
});

Deno.test("actorHistory of an actor without events is empty and null", async () => {
  await using dir = await tempDir();
  await withEngine(dir.path, async (engine) => {
    await engine.dispatch("volume/db", { type: "volume.create", opts: {} });
  });
  assert.deepEqual(await actorHistory(readLog(dir.path), "volume/nope"), {
    actor: null,
    entries: [],
    holders: [],
  });
});
