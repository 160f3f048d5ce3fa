// Snapshot files on a real disk: what is written is read back whole; any damage, a file cut
// short or a half-written temporary is found and named; compaction keeps exactly what it must.
import assert from "node:assert/strict";
import { join } from "node:path";
import { pruneLog } from "../../src/log/compaction.ts";
import { segmentName } from "../../src/log/segments.ts";
import {
  listSnapshots,
  readSnapshot,
  SnapshotDamagedError,
  type SnapshotEntry,
  snapshotName,
  writeSnapshot,
} from "../../src/log/snapshot_file.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const VERSIONS = { volume: 1, pool: 1 };

function entries(count: number): SnapshotEntry[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `volume/v${i}`,
    state: "ready",
    // Mount IDs that are property names of Object.prototype travel as pairs.
    context: { name: `v${i}`, mounts: [["__proto__", 1], ["toString", 2]] },
  }));
}

Deno.test("a snapshot is read back as written, through a temporary file that does not stay", async () => {
  await using dir = await tempDir();
  const written = entries(3000); // more than one write chunk
  const { path, bytes } = await writeSnapshot(
    dir.path,
    { seq: 42, base: 0, at: 1_700_000_000_000, versions: VERSIONS },
    written.length,
    written,
  );
  assert.equal(path, join(dir.path, snapshotName(42)));
  assert.equal((await Deno.stat(path)).size, bytes);
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  assert.deepEqual([...Deno.readDirSync(dir.path)].map((entry) => entry.name), [snapshotName(42)]);
  const read = await readSnapshot(path);
  assert.deepEqual(read.header, {
    seq: 42,
    base: 0,
    at: 1_700_000_000_000,
    actors: 3000,
    versions: VERSIONS,
  });
  assert.deepEqual(read.entries, written);
  assert.deepEqual(await listSnapshots(dir.path), [{ path, seq: 42, delta: false }]);
});

Deno.test("a flipped byte, a file cut short and bytes after the end are each named with their offset", async () => {
  await using dir = await tempDir();
  const { path } = await writeSnapshot(
    dir.path,
    { seq: 7, base: 0, at: 1, versions: VERSIONS },
    3,
    entries(3),
  );
  const good = await Deno.readFile(path);
  const lines: number[] = [0];
  for (let i = 0; i < good.length - 1; i++) if (good[i] === 0x0a) lines.push(i + 1);
  const expectDamage = async (bytes: Uint8Array, offset: number, reason: RegExp) => {
    await Deno.writeFile(path, bytes);
    await assert.rejects(
      () => readSnapshot(path),
      (error: unknown) =>
        error instanceof SnapshotDamagedError && error.file === path &&
        error.offset === offset && reason.test(error.reason),
    );
  };
  const flipped = good.slice();
  flipped[lines[2]! + 10]! ^= 0x01; // inside the second actor's line
  await expectDamage(flipped, lines[2]!, /checksum mismatch/);
  await expectDamage(good.slice(0, lines[4]!), lines[4]!, /ends before its end line/);
  // One whole actor line gone: the count catches it where the end line should be.
  const missing = new Uint8Array([...good.slice(0, lines[1]!), ...good.slice(lines[2]!)]);
  await expectDamage(missing, lines[4]! - (lines[2]! - lines[1]!), /not an actor|end line/);
  await expectDamage(new Uint8Array([...good, ...good.slice(0, lines[1]!)]), good.length, /after/);
});

Deno.test("a snapshot given fewer actors than it announced is not left behind", async () => {
  await using dir = await tempDir();
  await assert.rejects(
    () => writeSnapshot(dir.path, { seq: 9, base: 0, at: 1, versions: VERSIONS }, 5, entries(4)),
    /expected 5 actors, was given 4/,
  );
  assert.deepEqual([...Deno.readDirSync(dir.path)], []);
});

Deno.test("pruneLog keeps the newest K snapshots and every segment after the oldest kept", async () => {
  await using dir = await tempDir();
  // Segments starting at 1, 11, 21, 31 (records 1–40); snapshots at 9, 20, 25, 35.
  for (const first of [1, 11, 21, 31]) {
    await Deno.writeTextFile(join(dir.path, segmentName(first)), "");
  }
  for (const seq of [9, 20, 25, 35]) {
    await writeSnapshot(dir.path, { seq, base: 0, at: 1, versions: VERSIONS }, 1, entries(1));
  }
  await Deno.writeTextFile(join(dir.path, `${snapshotName(36)}.tmp`), "half");
  const pruned = await pruneLog(dir.path, { keep: 2 });
  // Oldest kept: 25. Segments 1 (1–10) and 11 (11–20) lie wholly before it; 21 holds 21–30.
  assert.deepEqual(pruned.snapshots, [20, 9].map((seq) => join(dir.path, snapshotName(seq))));
  assert.deepEqual(pruned.segments, [1, 11].map((seq) => join(dir.path, segmentName(seq))));
  assert.deepEqual(
    [...Deno.readDirSync(dir.path)].map((entry) => entry.name).sort(),
    [
      segmentName(21),
      segmentName(31),
      snapshotName(25),
      snapshotName(35),
    ].sort(),
  );
  // The last segment stays even when a snapshot covers all of it.
  await writeSnapshot(dir.path, { seq: 40, base: 0, at: 1, versions: VERSIONS }, 1, entries(1));
  const again = await pruneLog(dir.path, { keep: 1 });
  assert.deepEqual(again.segments, [join(dir.path, segmentName(21))]);
  assert.deepEqual((await listSnapshots(dir.path)).map((snapshot) => snapshot.seq), [40]);
  assert.ok(Deno.statSync(join(dir.path, segmentName(31))).isFile);
});

Deno.test("a delta may say an actor is gone; a full snapshot may not", async () => {
  await using dir = await tempDir();
  const gone = [{ id: "volume/v0", state: null, context: null }];
  const delta = await writeSnapshot(
    dir.path,
    { seq: 12, base: 7, at: 1, versions: VERSIONS },
    1,
    gone,
  );
  assert.equal(delta.path, join(dir.path, snapshotName(12, true)));
  assert.deepEqual((await readSnapshot(delta.path)).entries, gone);
  assert.deepEqual(await listSnapshots(dir.path), [{ path: delta.path, seq: 12, delta: true }]);
  const full = await writeSnapshot(
    dir.path,
    { seq: 13, base: 0, at: 1, versions: VERSIONS },
    1,
    gone,
  );
  await assert.rejects(() => readSnapshot(full.path), /removes an actor in a full snapshot/);
});

Deno.test("pruneLog counts full snapshots and keeps the deltas that build on the kept ones", async () => {
  await using dir = await tempDir();
  for (const first of [1, 11, 21, 31]) {
    await Deno.writeTextFile(join(dir.path, segmentName(first)), "");
  }
  // full 5, delta 8 (on 5), full 15, delta 22 (on 15), delta 33 (on 22)
  const write = (seq: number, base: number) =>
    writeSnapshot(dir.path, { seq, base, at: 1, versions: VERSIONS }, 1, entries(1));
  await write(5, 0);
  await write(8, 5);
  await write(15, 0);
  await write(22, 15);
  await write(33, 22);
  const pruned = await pruneLog(dir.path, { keep: 1 });
  assert.deepEqual(pruned.snapshots, [
    join(dir.path, snapshotName(8, true)),
    join(dir.path, snapshotName(5)),
  ], "newest first: a delta goes before its base");
  assert.deepEqual(pruned.segments, [join(dir.path, segmentName(1))], "11–20 holds 16–20");
  assert.deepEqual((await listSnapshots(dir.path)).map((file) => file.seq), [15, 22, 33]);
});

Deno.test("pruneLog cut short at any file never leaves a delta without the snapshot it builds on", async () => {
  // full 5, delta 8 (on 5), delta 9 (on 8), full 15, delta 22 (on 15), full 30: keep 1 prunes 5 files.
  const layout: [number, number][] = [[5, 0], [8, 5], [9, 8], [15, 0], [22, 15], [30, 0]];
  for (let crashAfter = 0; crashAfter <= 5; crashAfter++) {
    await using dir = await tempDir();
    await Deno.writeTextFile(join(dir.path, segmentName(1)), "");
    for (const [seq, base] of layout) {
      await writeSnapshot(dir.path, { seq, base, at: 1, versions: VERSIONS }, 1, entries(1));
    }
    let removed = 0;
    const remove = async (path: string) => {
      if (removed === crashAfter) throw new Error("killed");
      removed++;
      await Deno.remove(path);
    };
    await pruneLog(dir.path, { keep: 1, remove }).catch(() => {});
    const left = await listSnapshots(dir.path);
    const seqs = new Set(left.map((file) => file.seq));
    for (const file of left) {
      const { header } = await readSnapshot(file.path);
      if (header.base !== 0) {
        assert.ok(
          seqs.has(header.base),
          `cut after ${crashAfter}: ${file.seq} lost ${header.base}`,
        );
      }
    }
  }
});
