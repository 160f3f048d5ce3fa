// verifyLog over real logs: a clean multi-segment log from a real engine, then each kind of damage,
// with the machine check replay would make (replayCheck).
import assert from "node:assert/strict";
import { join } from "node:path";
import { Map as PersistentMap } from "immutable";
import type { PoolContext } from "../../machines/pool_machine.ts";
import { replay } from "../../src/engine/replay.ts";
import { replayCheck } from "../../src/inspect/time_travel.ts";
import { segmentName } from "../../src/log/file_store.ts";
import { listSegments, scanLog } from "../../src/log/reader.ts";
import { encodeRecord } from "../../src/log/record.ts";
import type { LogRecord } from "../../src/log/store.ts";
import { verifyLog } from "../../src/log/verify.ts";
import { driveLog as driveEngine } from "../helpers/drive_log.ts";
import { tempDir } from "../helpers/temp_dir.ts";

/** Volumes a, b, c created, mounted and unmounted over several segments; b removed. */
function driveLog(dir: string): Promise<LogRecord[]> {
  return driveEngine(dir, async (engine) => {
    for (const name of ["a", "b", "c"]) {
      await engine.dispatch(`volume/${name}`, { type: "volume.create", opts: {} });
      await engine.dispatch(`volume/${name}`, { type: "volume.mount", mountId: "m1" });
      await engine.dispatch(`volume/${name}`, { type: "volume.unmount", mountId: "m1" });
    }
    await engine.dispatch("volume/b", { type: "volume.remove" });
  });
}

/** Writes `records` as one segment named for the first, checksums and all. */
async function writeSegment(dir: string, records: LogRecord[]) {
  await Deno.mkdir(dir, { recursive: true });
  const lines = records.map((record) => new TextDecoder().decode(encodeRecord(record)));
  await Deno.writeTextFile(join(dir, segmentName(records[0]!.seq)), lines.join(""));
}

const record = (seq: number, actor: string, type: string, data = {}): LogRecord => ({
  seq,
  at: 1000 + seq,
  actor,
  type,
  v: 1,
  data,
});

const verify = (dir: string) => verifyLog(dir, { check: replayCheck() });

Deno.test("verifyLog passes a clean multi-segment log and counts it", async () => {
  await using dir = await tempDir();
  const written = await driveLog(dir.path);
  const segments = await listSegments(dir.path);
  let bytes = 0;
  for (const segment of segments) bytes += (await Deno.stat(segment.path)).size;
  assert.ok(segments.length >= 4);
  assert.deepEqual(await verify(dir.path), {
    ok: true,
    records: written.length,
    segments: segments.length,
    bytes,
    lastSeq: written.at(-1)!.seq,
    actors: 2,
    torn: null,
  });
});

Deno.test("verifyLog names the first damage: a byte flipped in a middle record", async () => {
  await using dir = await tempDir();
  await driveLog(dir.path);
  const located = [];
  for await (const entry of scanLog(dir.path)) located.push(entry);
  const target = located[Math.floor(located.length / 2)]!;
  const bytes = await Deno.readFile(target.file);
  bytes[target.offset + 25] = bytes[target.offset + 25]! ^ 0x01;
  await Deno.writeFile(target.file, bytes);
  assert.deepEqual(await verify(dir.path), {
    ok: false,
    file: target.file,
    offset: target.offset,
    seq: target.record.seq,
    reason: "checksum mismatch",
  });
});

Deno.test("verifyLog finds a gap across segments and a segment named for another sequence", async () => {
  await using dir = await tempDir();
  await writeSegment(dir.path, [record(1, "volume/a", "volume.create", { opts: {} })]);
  await writeSegment(dir.path, [record(3, "volume/a", "effect.succeeded")]);
  assert.deepEqual(await verify(dir.path), {
    ok: false,
    file: join(dir.path, segmentName(3)),
    offset: 0,
    seq: 2,
    reason: "segment is named for sequence 3",
  });
  await Deno.remove(join(dir.path, segmentName(3)));
  await Deno.writeFile(
    join(dir.path, segmentName(2)),
    encodeRecord(record(3, "volume/a", "effect.succeeded")),
  );
  const result = await verify(dir.path);
  assert.equal(result.ok, false);
  assert.equal(!result.ok && result.reason, "record has sequence 3");
});

Deno.test("verifyLog reports a torn last record apart, not as damage", async () => {
  await using dir = await tempDir();
  const written = await driveLog(dir.path);
  const last = (await listSegments(dir.path)).at(-1)!;
  const size = (await Deno.stat(last.path)).size;
  await Deno.writeTextFile(last.path, '{"seq":99,"at":1,"ac', { append: true });
  const result = await verify(dir.path);
  assert.ok(result.ok);
  assert.equal(result.records, written.length);
  assert.deepEqual(result.torn, { file: last.path, offset: size, bytes: 20 });
});

Deno.test("verifyLog calls damage a record its machine does not accept", async (t) => {
  const cases: [string, LogRecord, RegExp][] = [
    [
      "an event that does not change its actor",
      record(3, "volume/a", "volume.unmount", { mountId: "nobody" }),
      /^volume\.unmount does not apply to volume\/a in state unmounted$/,
    ],
    [
      "an event that does not fit its kind's schema",
      record(3, "volume/a", "volume.mount", { mount: "m1" }),
      /does not fit its schema: mountId/,
    ],
    ["an unknown kind", record(3, "boat/a", "boat.sail"), /Unknown actor kind "boat"/],
    [
      "a newer machine version",
      { ...record(3, "volume/a", "volume.remove"), v: 9 },
      /written by version 9 of the volume machine/,
    ],
  ];
  for (const [name, bad, reason] of cases) {
    await t.step(name, async () => {
      await using dir = await tempDir();
      await writeSegment(dir.path, [
        record(1, "volume/a", "volume.create", { opts: {} }),
        record(2, "volume/a", "effect.succeeded", { mountpoint: "/x" }),
        bad,
        record(4, "volume/a", "volume.remove"),
      ]);
      const offset = encodeRecord(record(1, "volume/a", "volume.create", { opts: {} })).length +
        encodeRecord(record(2, "volume/a", "effect.succeeded", { mountpoint: "/x" })).length;
      const result = await verify(dir.path);
      assert.ok(!result.ok, JSON.stringify(result));
      assert.equal(result.file, join(dir.path, segmentName(1)));
      assert.equal(result.offset, offset);
      assert.equal(result.seq, 3);
      assert.match(result.reason, reason);
    });
  }
});

Deno.test("verifyLog without a check reads records only", async () => {
  await using dir = await tempDir();
  await writeSegment(dir.path, [record(1, "volume/a", "volume.remove")]);
  const result = await verifyLog(dir.path);
  assert.ok(result.ok);
  assert.equal(result.actors, null);
  assert.equal((await verify(dir.path)).ok, false);
});

Deno.test("a snapshot's map entries in another order still match the log's replay", () => {
  const pool = "pool/198.18.5.0/24";
  const records = [
    record(1, pool, "pool.request", { cidr: "198.18.5.0/24", space: "BerthLocal", options: {} }),
    ...[3, 4, 5, 6].map((n, i) =>
      record(2 + i, pool, "pool.address.reserve", { address: `198.18.5.${n}`, role: "endpoint" })
    ),
    record(6, pool, "pool.address.release", { address: "198.18.5.3" }),
  ];
  const replayed = replay(records);
  const context = replayed.get(pool)!.context as PoolContext;
  // The same addresses, held in the order a map restored from a snapshot and then changed has.
  const reordered = PersistentMap([...context.addresses].reverse());
  assert.notDeepEqual([...reordered.keys()], [...context.addresses.keys()]);
  const actors = new Map(replayed);
  actors.set(pool, { ...replayed.get(pool)!, context: { ...context, addresses: reordered } });
  const check = replayCheck(null, [{ path: "s.snap", seq: 6, actors }]);
  for (const each of records) assert.equal(check.check(each), null, `record ${each.seq}`);
});
