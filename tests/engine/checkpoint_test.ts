// The checkpointer over a real engine and file store: when it takes snapshots by itself, that
// each stands for records already on disk, and that a host with many actors takes fewer.
import assert from "node:assert/strict";
import { createCheckpointer } from "../../src/engine/checkpoint.ts";
import { createEngine } from "../../src/engine/engine.ts";
import { createVolumeEffects } from "../../src/engine/volume_effects.ts";
import { openFileStore } from "../../src/log/file_store.ts";
import { listSnapshots, readSnapshot } from "../../src/log/snapshot_file.ts";
import { createRecordingBackend } from "../helpers/recording_backend.ts";
import { tempDir } from "../helpers/temp_dir.ts";

async function setUp(dir: string, everyEvents: number, actors = 0) {
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
    actors,
    logBytes: () => store.stats().bytes,
    warn: (line) => assert.fail(line),
    onCheckpoint: () => durableAtWrite.push(store.stats().records),
  });
  return { store, engine, checkpointer, durableAtWrite };
}

Deno.test("a snapshot is taken every N events, each of records already durable", async () => {
  await using dir = await tempDir();
  const { store, engine, checkpointer, durableAtWrite } = await setUp(dir.path, 10);
  // 20 volumes, created concurrently so that appends overtake the snapshots being written.
  await Promise.all(
    Array.from(
      { length: 20 },
      (_, i) => engine.dispatch(`volume/v${i}`, { type: "volume.create", opts: {} }),
    ),
  );
  // One snapshot at a time: records that arrive while one is written wait for the next.
  for (let i = 20; i < 30; i++) {
    await engine.dispatch(`volume/v${i}`, { type: "volume.create", opts: {} });
  }
  await checkpointer.stop();
  const snapshots = await listSnapshots(dir.path);
  assert.ok(snapshots.length >= 2, `${snapshots.length} snapshots of 60 records`);
  for (let i = 1; i < snapshots.length; i++) {
    assert.ok(snapshots[i]!.seq - snapshots[i - 1]!.seq >= 10, "at least N events apart");
  }
  for (const [i, { path, seq }] of snapshots.entries()) {
    assert.ok(seq <= durableAtWrite[i]!, `snapshot ${seq} stands for durable records only`);
    const { entries } = await readSnapshot(path);
    assert.ok(entries.length > 0);
  }
  await store.close();
});

Deno.test("with more live actors than N, snapshots wait for as many events as there are actors", async () => {
  await using dir = await tempDir();
  const { store, engine, checkpointer } = await setUp(dir.path, 5, 30);
  for (let i = 0; i < 14; i++) {
    await engine.dispatch(`volume/v${i}`, { type: "volume.create", opts: {} });
  }
  assert.deepEqual(await listSnapshots(dir.path), [], "28 events < 30 actors: none yet");
  await engine.dispatch("volume/v14", { type: "volume.create", opts: {} });
  await checkpointer.stop();
  assert.deepEqual((await listSnapshots(dir.path)).map((snapshot) => snapshot.seq), [30]);
  await store.close();
});
