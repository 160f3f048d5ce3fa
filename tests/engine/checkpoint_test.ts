// The checkpointer over a real engine and file store: when it takes snapshots by itself, that
// each stands for records already on disk, that between full snapshots it writes deltas of what
// changed, and that the state a delta stands for is the engine's own.
import assert from "node:assert/strict";
import { createCheckpointer, MAX_CHAIN } from "../../src/engine/checkpoint.ts";
import { createEngine } from "../../src/engine/engine.ts";
import { replay } from "../../src/engine/replay.ts";
import { materialize } from "../../src/engine/snapshots.ts";
import { createVolumeEffects } from "../../src/engine/volume_effects.ts";
import { openFileStore } from "../../src/log/file_store.ts";
import { readLog } from "../../src/log/reader.ts";
import { listSnapshots, readSnapshot } from "../../src/log/snapshot_file.ts";
import { createRecordingBackend } from "../helpers/recording_backend.ts";
import { tempDir } from "../helpers/temp_dir.ts";

async function setUp(dir: string, everyEvents: number) {
  const store = await openFileStore({ dir, warn: () => {} });
  const engine = createEngine({
    store,
    effects: { volume: createVolumeEffects(createRecordingBackend().backend) },
  });
  const durableAtWrite: number[] = [];
  const checkpointer = createCheckpointer({
    engine,
    store,
    dir,
    policy: { everyEvents, everyBytes: 1 << 30, keep: 100 },
    since: 0,
    sinceFull: 0,
    sinceDeltas: 0,
    replayedTail: false,
    logBytes: () => store.stats().bytes,
    warn: (line) => assert.fail(line),
    onCheckpoint: () => durableAtWrite.push(store.stats().records),
  });
  return { store, engine, checkpointer, durableAtWrite };
}

const create = { type: "volume.create", opts: {} } as const;

Deno.test("a snapshot is taken every N events, each of records already durable", async () => {
  await using dir = await tempDir();
  const { store, engine, checkpointer, durableAtWrite } = await setUp(dir.path, 10);
  // 20 volumes, created concurrently so that appends overtake the snapshots being written.
  await Promise.all(Array.from({ length: 20 }, (_, i) => engine.dispatch(`volume/v${i}`, create)));
  // One snapshot at a time: records that arrive while one is written wait for the next.
  for (let i = 20; i < 60; i++) await engine.dispatch(`volume/v${i}`, create);
  await checkpointer.stop();
  const snapshots = await listSnapshots(dir.path);
  assert.ok(snapshots.length >= 2, `${snapshots.length} snapshots of 120 records`);
  for (let i = 1; i < snapshots.length; i++) {
    assert.ok(snapshots[i]!.seq - snapshots[i - 1]!.seq >= 10, "at least N events apart");
  }
  for (const [i, { seq }] of snapshots.entries()) {
    assert.ok(seq <= durableAtWrite[i]!, `snapshot ${seq} stands for durable records only`);
  }
  await store.close();
});

Deno.test("between full snapshots come deltas of the changed actors, each standing for the log", async () => {
  await using dir = await tempDir();
  // Snapshots when asked for, so that which ones are deltas does not hang on timing.
  const { store, engine, checkpointer } = await setUp(dir.path, 1_000_000);
  for (let i = 0; i < 10; i++) await engine.dispatch(`volume/v${i}`, create); // 20 records
  await checkpointer.checkpoint();
  // Then a few actors change again and again: mounts on v0, v1; v2 removed.
  for (let round = 0; round < 4; round++) {
    await engine.dispatch("volume/v0", { type: "volume.mount", mountId: `a${round}` });
    await engine.dispatch("volume/v1", { type: "volume.mount", mountId: `b${round}` });
    await checkpointer.checkpoint();
  }
  await engine.dispatch("volume/v2", { type: "volume.remove" });
  await checkpointer.checkpoint();
  await checkpointer.stop();
  const snapshots = await listSnapshots(dir.path);
  assert.equal(snapshots[0]!.delta, false, "the first one is full");
  const deltas = snapshots.filter((file) => file.delta);
  assert.ok(deltas.length >= 3, `${deltas.length} deltas`);
  const removal = await readSnapshot(snapshots.at(-1)!.path);
  assert.deepEqual(removal.entries.find((entry) => entry.id === "volume/v2"), {
    id: "volume/v2",
    state: null,
    context: null,
  });
  const records = await Array.fromAsync(readLog(dir.path));
  for (const file of deltas) {
    const { header, entries } = await readSnapshot(file.path);
    assert.ok(header.base > 0 && header.base < header.seq);
    // Exactly the actors with a record since its base: no more, no fewer.
    const since = new Set(
      records.filter((r) => r.seq > header.base && r.seq <= header.seq).map((r) => r.actor),
    );
    assert.deepEqual(entries.map((entry) => entry.id).sort(), [...since].sort(), file.path);
  }
  // Every snapshot, laid over the ones it builds on, is what the log replays to at its seq.
  for (const file of snapshots) {
    const { actors } = await materialize(file, snapshots);
    const expected = replay(records.filter((record) => record.seq <= file.seq));
    assert.deepEqual([...actors.keys()].sort(), [...expected.keys()].sort(), `at ${file.seq}`);
    for (const [id, snapshot] of expected) {
      assert.equal(actors.get(id)!.value, snapshot.value, `${id} at ${file.seq}`);
      assert.equal(
        JSON.stringify(actors.get(id)!.context),
        JSON.stringify(snapshot.context),
        `${id} at ${file.seq}`,
      );
    }
  }
  await store.close();
});

Deno.test("a full snapshot comes once as many events as there are actors were logged since the last", async () => {
  await using dir = await tempDir();
  // Snapshots only when asked for, to see which kind each one is.
  const { store, engine, checkpointer } = await setUp(dir.path, 1_000_000);
  const mounts = async (count: number) => {
    for (let i = 0; i < count; i++) {
      await engine.dispatch("volume/v0", { type: "volume.mount", mountId: `m${store.lastSeq}` });
    }
  };
  for (let i = 0; i < 10; i++) await engine.dispatch(`volume/v${i}`, create); // 10 actors
  await checkpointer.checkpoint(); // none before it: full
  await mounts(2); // v0's first mount has an effect: 3 records, 3 since the full
  await checkpointer.checkpoint();
  await mounts(3); // 6 since the full
  await checkpointer.checkpoint();
  await mounts(4); // 10 since the full: as many as the actors
  await checkpointer.checkpoint();
  await checkpointer.stop();
  const kinds = (await listSnapshots(dir.path)).map((file) =>
    `${file.seq}${file.delta ? "d" : "f"}`
  );
  assert.deepEqual(kinds, ["20f", "23d", "26d", "30f"]);
  await store.close();
});

Deno.test("after MAX_CHAIN deltas on one full snapshot the next one is full", async () => {
  await using dir = await tempDir();
  const { store, engine, checkpointer } = await setUp(dir.path, 1_000_000);
  for (let i = 0; i < 100; i++) await engine.dispatch(`volume/v${i}`, create); // 100 actors
  await checkpointer.checkpoint();
  // One event between snapshots, as many clean stops with little in between would leave.
  for (let i = 0; i <= MAX_CHAIN; i++) {
    await engine.dispatch("volume/v0", { type: "volume.mount", mountId: `m${i}` });
    await checkpointer.checkpoint();
  }
  await checkpointer.stop();
  const files = await listSnapshots(dir.path);
  assert.equal(files.length, MAX_CHAIN + 2);
  assert.deepEqual(files.map((file) => file.delta), [
    false,
    ...Array.from({ length: MAX_CHAIN }, () => true),
    false,
  ]);
  await store.close();
});
