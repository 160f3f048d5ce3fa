import assert from "node:assert/strict";
import { join } from "node:path";
import { LogDamagedError, openFileStore } from "../../src/log/file_store.ts";
import type { NewRecord } from "../../src/log/store.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const entry = (n: number): NewRecord => ({
  at: 1000 + n,
  actor: `volume/v${n % 3}`,
  type: "volume.mount",
  v: 1,
  data: { mountId: `m${n}` },
});

function collect() {
  const warnings: string[] = [];
  return { warnings, warn: (message: string) => warnings.push(message) };
}

async function segments(dir: string): Promise<string[]> {
  const names = [];
  for await (const item of Deno.readDir(dir)) names.push(item.name);
  return names.sort();
}

Deno.test("openFileStore appends durable records that a reopen reads back in order", async () => {
  await using dir = await tempDir();
  const logDir = join(dir.path, "log");
  const store = await openFileStore({ dir: logDir, warn: () => {} });
  const written = await Promise.all([1, 2, 3].map((n) => store.append(entry(n))));
  assert.deepEqual(written.map((record) => record.seq), [1, 2, 3]);
  await store.close();
  const again = await openFileStore({ dir: logDir, warn: () => {} });
  assert.equal(again.lastSeq, 3);
  assert.deepEqual(await Array.fromAsync(again.records()), written);
  assert.deepEqual(await Array.fromAsync(again.records()), [], "records() is walked once");
  const next = await again.append(entry(4));
  assert.equal(next.seq, 4);
  await again.close();
});

Deno.test("openFileStore group-commits appends that queue during a write", async () => {
  await using dir = await tempDir();
  const store = await openFileStore({ dir: join(dir.path, "log"), warn: () => {} });
  const records = await Promise.all(Array.from({ length: 200 }, (_, n) => store.append(entry(n))));
  assert.deepEqual(records.map((record) => record.seq), records.map((_, index) => index + 1));
  const stats = store.stats();
  assert.equal(stats.records, 200);
  assert.ok(stats.batches < 200 / 4, `expected batching, got ${stats.batches} batches`);
  await store.close();
});

Deno.test("openFileStore tells subscribers of each durable record", async () => {
  await using dir = await tempDir();
  const store = await openFileStore({ dir: join(dir.path, "log"), warn: () => {} });
  const seen: number[] = [];
  const stop = store.subscribe((record) => seen.push(record.seq));
  await store.append(entry(1));
  stop();
  await store.append(entry(2));
  assert.deepEqual(seen, [1]);
  await store.close();
});

Deno.test("openFileStore keeps the log readable by root only", async () => {
  await using dir = await tempDir();
  const logDir = join(dir.path, "log");
  const store = await openFileStore({ dir: logDir, warn: () => {} });
  await store.append(entry(1));
  await store.close();
  assert.equal((await Deno.stat(logDir)).mode! & 0o777, 0o700);
  for (const name of await segments(logDir)) {
    assert.equal((await Deno.stat(join(logDir, name))).mode! & 0o777, 0o600, name);
  }
});

Deno.test("openFileStore cuts off a torn last record with a warning", async () => {
  await using dir = await tempDir();
  const logDir = join(dir.path, "log");
  const store = await openFileStore({ dir: logDir, warn: () => {} });
  await store.append(entry(1));
  await store.append(entry(2));
  await store.close();
  const [segment] = await segments(logDir);
  const path = join(logDir, segment!);
  const goodSize = (await Deno.stat(path)).size;
  await Deno.writeTextFile(path, '{"seq":3,"at":1003,"actor":"volu', { append: true });
  const { warnings, warn } = collect();
  const again = await openFileStore({ dir: logDir, warn });
  assert.equal(again.lastSeq, 2);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, new RegExp(`torn last record in .* at byte ${goodSize}`));
  assert.equal((await Deno.stat(path)).size, goodSize, "the torn bytes are gone from disk");
  assert.equal((await again.append(entry(3))).seq, 3);
  await again.close();
  const third = await openFileStore({ dir: logDir, warn });
  assert.equal((await Array.fromAsync(third.records())).length, 3);
  await third.close();
});

Deno.test("openFileStore's records() refuses a damaged record before the end, naming file and offset", async () => {
  await using dir = await tempDir();
  const logDir = join(dir.path, "log");
  const store = await openFileStore({ dir: logDir, warn: () => {} });
  for (const n of [1, 2, 3]) await store.append(entry(n));
  await store.close();
  const path = join(logDir, (await segments(logDir))[0]!);
  const bytes = await Deno.readFile(path);
  const secondStart = bytes.indexOf(0x0a) + 1;
  bytes[secondStart + 10] = bytes[secondStart + 10]! ^ 0x01;
  await Deno.writeFile(path, bytes);
  // Open reads only the end of the log; the damage shows when replay streams past it.
  const again = await openFileStore({ dir: logDir, warn: () => {} });
  await assert.rejects(
    () => Array.fromAsync(again.records()),
    (error: unknown) => {
      assert.ok(error instanceof LogDamagedError);
      assert.equal(error.file, path);
      assert.equal(error.offset, secondStart);
      assert.match(error.message, /checksum mismatch/);
      return true;
    },
  );
  await again.close();
});

Deno.test("openFileStore's records() refuses a gap in the sequence", async () => {
  await using dir = await tempDir();
  const logDir = join(dir.path, "log");
  const store = await openFileStore({ dir: logDir, warn: () => {} });
  for (const n of [1, 2, 3]) await store.append(entry(n));
  await store.close();
  const path = join(logDir, (await segments(logDir))[0]!);
  const lines = (await Deno.readTextFile(path)).split("\n");
  await Deno.writeTextFile(path, [lines[0], lines[2], ""].join("\n"));
  const again = await openFileStore({ dir: logDir, warn: () => {} });
  assert.equal(again.lastSeq, 3);
  await assert.rejects(() => Array.fromAsync(again.records()), /expected sequence 2/);
  await again.close();
});

Deno.test("openFileStore starts a new segment past the size limit and reads across them", async () => {
  await using dir = await tempDir();
  const logDir = join(dir.path, "log");
  const store = await openFileStore({ dir: logDir, warn: () => {}, segmentBytes: 300 });
  for (let n = 1; n <= 10; n++) await store.append(entry(n));
  await store.close();
  const names = await segments(logDir);
  assert.ok(names.length > 2, `expected several segments, got ${names}`);
  assert.equal(names[0], "00000000000000000001.log");
  const again = await openFileStore({ dir: logDir, warn: () => {}, segmentBytes: 300 });
  assert.deepEqual((await Array.fromAsync(again.records())).map((record) => record.seq), [
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
  ]);
  await again.close();
});

Deno.test("openFileStore refuses appends after close", async () => {
  await using dir = await tempDir();
  const store = await openFileStore({ dir: join(dir.path, "log"), warn: () => {} });
  await store.close();
  await assert.rejects(() => store.append(entry(1)), /closed/);
});

Deno.test("openFileStore refuses a complete last record with a bad checksum, and finds big records", async () => {
  await using dir = await tempDir();
  const logDir = join(dir.path, "log");
  const store = await openFileStore({ dir: logDir, warn: () => {} });
  for (const n of [1, 2, 3]) await store.append(entry(n));
  // A record larger than the 64 KiB tail window: open must widen it to find where it starts.
  await store.append({ ...entry(4), data: { big: "x".repeat(200_000) } });
  await store.close();
  const warnings: string[] = [];
  const big = await openFileStore({ dir: logDir, warn: (message) => warnings.push(message) });
  assert.equal(big.lastSeq, 4);
  assert.equal(warnings.length, 0, warnings.join("\n"));
  await big.close();
  const path = join(logDir, (await segments(logDir))[0]!);
  const bytes = await Deno.readFile(path);
  const fourthStart = bytes.lastIndexOf(0x0a, bytes.length - 2) + 1;
  bytes[bytes.length - 30] = bytes[bytes.length - 30]! ^ 0x01; // inside record 4's line
  await Deno.writeFile(path, bytes);
  // Newline-terminated: the whole record was written, so it may have been acknowledged. Only the
  // operator may cut it (berth repair); the start stops and says where.
  await assert.rejects(
    () => openFileStore({ dir: logDir, warn: (message) => warnings.push(message) }),
    (error: unknown) => {
      assert.ok(error instanceof LogDamagedError);
      assert.equal(error.file, path);
      assert.equal(error.offset, fourthStart);
      assert.match(error.message, /checksum mismatch/);
      return true;
    },
  );
  assert.equal(warnings.length, 0, warnings.join("\n"));
  assert.equal((await Deno.stat(path)).size, bytes.length, "nothing was cut");
});
