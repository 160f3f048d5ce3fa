// readLog / followLog over real multi-segment logs written by a real engine on a file store.
import assert from "node:assert/strict";
import { LogDamagedError, openFileStore } from "../../src/log/file_store.ts";
import {
  followLog,
  listSegments,
  readLog,
  RecordDamagedError,
  scanLog,
  type TornRecord,
} from "../../src/log/reader.ts";
import { encodeRecord } from "../../src/log/record.ts";
import type { LogRecord } from "../../src/log/store.ts";
import { driveLog as driveEngine } from "../helpers/drive_log.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { assertSameData } from "../helpers/same_json.ts";

const SEGMENT_BYTES = 400;

/** A log of volumes created, mounted twice and unmounted once, over several segments. */
function driveLog(dir: string, names = ["a", "b", "c"]): Promise<LogRecord[]> {
  return driveEngine(dir, async (engine) => {
    for (const name of names) {
      await engine.dispatch(`volume/${name}`, { type: "volume.create", opts: {} });
      await engine.dispatch(`volume/${name}`, { type: "volume.mount", mountId: "m1" });
      await engine.dispatch(`volume/${name}`, { type: "volume.mount", mountId: "m2" });
      await engine.dispatch(`volume/${name}`, { type: "volume.unmount", mountId: "m1" });
    }
  }, SEGMENT_BYTES);
}

async function collect(source: AsyncIterable<LogRecord>): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const record of source) out.push(record);
  return out;
}

const seqs = (records: LogRecord[]) => records.map((record) => record.seq);

async function flipByte(path: string, offset: number) {
  const bytes = await Deno.readFile(path);
  bytes[offset] = bytes[offset]! ^ 0x04;
  await Deno.writeFile(path, bytes);
}

Deno.test("readLog streams every record of a multi-segment log in order", async () => {
  await using dir = await tempDir();
  const written = await driveLog(dir.path);
  assert.ok((await listSegments(dir.path)).length >= 5, "several segments");
  assertSameData(await collect(readLog(dir.path)), written);
});

Deno.test("readLog starts at the segment covering from and stops after to", async () => {
  await using dir = await tempDir();
  const written = await driveLog(dir.path);
  const segments = await listSegments(dir.path);
  const third = segments[2]!;
  // Damage in the first segment: a read starting in a later one never opens it.
  await flipByte(segments[0]!.path, 20);
  const from = third.firstSeq + 1;
  const got = await collect(readLog(dir.path, { from, to: from + 3 }));
  assertSameData(got, written.filter((record) => record.seq >= from && record.seq <= from + 3));
  assert.deepEqual(seqs(await collect(readLog(dir.path, { from: third.firstSeq, to: 0 }))), []);
  await assert.rejects(() => collect(readLog(dir.path)), LogDamagedError);
});

Deno.test("readLog filters by actor and by type", async () => {
  await using dir = await tempDir();
  const written = await driveLog(dir.path);
  const ofB = written.filter((record) => record.actor === "volume/b");
  assertSameData(await collect(readLog(dir.path, { actor: "volume/b" })), ofB);
  assert.deepEqual(
    await collect(readLog(dir.path, { actor: "volume/b", type: "volume.mount" })),
    ofB.filter((record) => record.type === "volume.mount"),
  );
  assert.deepEqual(
    await collect(readLog(dir.path, { type: "volume.unmount" })),
    written.filter((record) => record.type === "volume.unmount"),
  );
  assertSameData(await collect(readLog(dir.path, { actor: "volume/nope" })), []);
});

Deno.test("readLog skips a torn last record, telling onTorn", async () => {
  await using dir = await tempDir();
  const written = await driveLog(dir.path);
  const last = (await listSegments(dir.path)).at(-1)!;
  const size = (await Deno.stat(last.path)).size;
  const partial = new TextEncoder().encode(`{"seq":${written.length + 1},"at":1,"actor":"vol`);
  await Deno.writeFile(last.path, partial, { append: true });
  const torn: TornRecord[] = [];
  const got = await collect(readLog(dir.path, { onTorn: (found) => torn.push(found) }));
  assertSameData(got, written);
  assert.deepEqual(torn, [{ file: last.path, offset: size, bytes: partial.length }]);
});

Deno.test("readLog names file, byte offset and expected sequence of a damaged record", async () => {
  await using dir = await tempDir();
  await driveLog(dir.path);
  const located = [];
  for await (const entry of scanLog(dir.path)) located.push(entry);
  const target = located[Math.floor(located.length / 2)]!;
  await flipByte(target.file, target.offset + 30);
  const error = await collect(readLog(dir.path)).then(() => null, (error) => error);
  assert.ok(error instanceof RecordDamagedError && error instanceof LogDamagedError);
  assert.equal(error.file, target.file);
  assert.equal(error.offset, target.offset);
  assert.equal(error.seq, target.record.seq);
  assert.equal(
    error.message,
    `Cannot read log: ${target.file} is damaged at byte ${target.offset}: ` +
      `checksum mismatch (expected sequence ${target.record.seq})`,
  );
});

Deno.test("readLog refuses a gap between segments and a torn record before the last", async () => {
  await using dir = await tempDir();
  await driveLog(dir.path);
  const segments = await listSegments(dir.path);
  await Deno.remove(segments[1]!.path);
  await assert.rejects(
    () => collect(readLog(dir.path)),
    (error: unknown) =>
      error instanceof RecordDamagedError && error.file === segments[2]!.path &&
      error.offset === 0 && error.seq === segments[1]!.firstSeq,
  );
  const first = segments[0]!;
  const size = (await Deno.stat(first.path)).size;
  await Deno.truncate(first.path, size - 5);
  await assert.rejects(
    () => collect(readLog(dir.path)),
    (error: unknown) =>
      error instanceof RecordDamagedError && error.file === first.path &&
      error.reason === "record has no end of line",
  );
});

Deno.test("readLog checksums what it yields when filtering by actor", async () => {
  await using dir = await tempDir();
  await driveLog(dir.path);
  const located = [];
  for await (const entry of scanLog(dir.path, { actor: "volume/b" })) located.push(entry);
  const target = located[2]!;
  // In the data, past the fields a filter looks at.
  await flipByte(target.file, target.offset + encodeRecord(target.record).length - 20);
  await assert.rejects(
    () => collect(readLog(dir.path, { actor: "volume/b" })),
    (error: unknown) => error instanceof RecordDamagedError && error.offset === target.offset,
  );
});

Deno.test("followLog yields the log, then records a running store appends, until aborted", async () => {
  await using dir = await tempDir();
  const written = await driveLog(dir.path, ["a"]);
  const store = await openFileStore({ dir: dir.path, warn: () => {}, segmentBytes: SEGMENT_BYTES });
  const controller = new AbortController();
  const seen: LogRecord[] = [];
  let idle = 0;
  const following = (async () => {
    const options = { signal: controller.signal, pollMs: 20, onIdle: () => idle++ };
    for await (const record of followLog(dir.path, options)) seen.push(record);
  })();
  try {
    await until(() => seen.length === written.length);
    const more: LogRecord[] = [];
    for (let n = 0; n < 30; n++) {
      more.push(
        await store.append({
          at: n,
          actor: "volume/a",
          type: "volume.mount",
          v: 1,
          data: { mountId: `x${n}` },
        }),
      );
    }
    assert.ok((await listSegments(dir.path)).length > 3, "the appends opened new segments");
    await until(() => seen.length === written.length + more.length);
    assertSameData(seen, [...written, ...more]);
    assert.ok(idle > 0, "onIdle was called while caught up");
  } finally {
    controller.abort();
    await following;
    await store.close();
  }
});

Deno.test("followLog waits out a torn tail and reads what a restarted store writes there", async () => {
  await using dir = await tempDir();
  const written = await driveLog(dir.path, ["a"]);
  const last = (await listSegments(dir.path)).at(-1)!;
  await Deno.writeFile(last.path, new TextEncoder().encode(`{"seq":${written.length + 1},"at"`), {
    append: true,
  });
  const controller = new AbortController();
  const seen: LogRecord[] = [];
  const following = (async () => {
    for await (const record of followLog(dir.path, { signal: controller.signal, pollMs: 20 })) {
      seen.push(record);
    }
  })();
  try {
    await until(() => seen.length === written.length);
    // A restart cuts the torn record and appends new ones in its place.
    const store = await openFileStore({ dir: dir.path, warn: () => {}, segmentBytes: 1 << 20 });
    const next = await store.append({
      at: 1,
      actor: "volume/a",
      type: "volume.remove",
      v: 1,
      data: {},
    });
    await store.close();
    await until(() => seen.length === written.length + 1);
    assert.deepEqual(seen.at(-1), next);
  } finally {
    controller.abort();
    await following;
  }
});

async function until(condition: () => boolean, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
