// The file event store: segments of log lines in <state-dir>/log, group-committed with one
// write and one fdatasync per batch. Knows nothing of the engine.
import { join } from "node:path";
import { decodeRecord, encodeRecord } from "./record.ts";
import { readLog } from "./reader.ts";
import { LogDamagedError, SEGMENT_REGEXP, segmentName } from "./segments.ts";

export { LogDamagedError, SEGMENT_REGEXP, segmentName };
import type { EventStore, LogRecord, NewRecord } from "./store.ts";

export type FileStoreOptions = {
  /** The directory that holds the segments; created (mode 0700) if missing. */
  dir: string;
  /** Where warnings go (a torn last record cut off). */
  warn: (message: string) => void;
  /** Start a new segment once the current one is larger than this. */
  segmentBytes?: number;
  /** Timings for metrics; called on the append path, so they must be cheap. */
  timings?: StoreTimings;
};

/** What the store reports of its own speed (seconds), for /metrics. */
export type StoreTimings = {
  /** Once per batch, after its fdatasync: how many records and bytes, how long the sync took. */
  batch(records: number, bytes: number, syncSeconds: number): void;
  /** Once per record: from append() to durable. */
  durable(seconds: number): void;
};

const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

type Pending = {
  bytes: Uint8Array;
  record: LogRecord;
  done: PromiseWithResolvers<LogRecord>;
  /** performance.now() at append, when timings are wanted. */
  since: number;
};

/**
 * How group commit went: `batches` writes+fdatasyncs carried `records` records; `bytes` is the
 * size of every segment together.
 */
export type FileStoreStats = { batches: number; records: number; bytes: number };

/** Opens (or creates) the log in `dir`, checking every record; cuts off a torn last record. */
export async function openFileStore(
  options: FileStoreOptions,
): Promise<EventStore & { stats(): FileStoreStats }> {
  const { dir, warn, timings } = options;
  const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  await Deno.chmod(dir, 0o700);
  const names = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && SEGMENT_REGEXP.test(entry.name)) names.push(entry.name);
  }
  names.sort();
  // Only the last segment is read now: where the log ends and whether a crash tore its last
  // record. The others are read once, streamed by records() as replay folds them, so a long log
  // is never all in memory; damage there stops the replay with the same error.
  let totalBytes = 0;
  for (const name of names.slice(0, -1)) totalBytes += (await Deno.stat(join(dir, name))).size;
  let lastSeq = 0;
  let size = 0;
  const lastName = names.at(-1);
  if (lastName !== undefined) {
    const path = join(dir, lastName);
    const firstSeq = Number(SEGMENT_REGEXP.exec(lastName)![1]);
    const tail = await readTail(path, firstSeq, warn);
    const length = (await Deno.stat(path)).size;
    if (tail.size < length) await Deno.truncate(path, tail.size);
    size = tail.size;
    totalBytes += size;
    lastSeq = tail.lastSeq;
  }
  const openedAt = lastSeq;
  const firstSeq = names[0] === undefined ? 1 : Number(SEGMENT_REGEXP.exec(names[0])![1]);
  let replayed = false;
  // The promise of the last append: once it settles, every earlier one has.
  let lastAppend: Promise<unknown> = Promise.resolve();
  const current = names.at(-1) ?? segmentName(1);
  let file = await Deno.open(join(dir, current), {
    create: true,
    append: true,
    mode: 0o600,
  });
  await syncDir(dir);

  const queue: Pending[] = [];
  const listeners = new Set<(record: LogRecord) => void>();
  let writing: Promise<void> | null = null;
  let failure: Error | null = null;
  let closed = false;
  const stats: FileStoreStats = { batches: 0, records: 0, bytes: totalBytes };

  async function rotate(nextSeq: number) {
    file.close();
    file = await Deno.open(join(dir, segmentName(nextSeq)), {
      create: true,
      append: true,
      mode: 0o600,
    });
    await syncDir(dir);
    size = 0;
  }

  async function pump() {
    while (queue.length > 0 && failure === null) {
      const batch = queue.splice(0);
      try {
        if (size >= segmentBytes) await rotate(batch[0]!.record.seq);
        const bytes = concat(batch);
        // The write only fills the page cache: doing it in place saves a trip through the blocking
        // thread pool. The sync is asynchronous on purpose: appends arriving meanwhile join the
        // next batch (a synchronous sync would stall the event loop and stop batching).
        writeAllSync(file, bytes);
        const syncStart = timings ? performance.now() : 0;
        await file.syncData();
        if (timings) {
          timings.batch(batch.length, bytes.length, (performance.now() - syncStart) / 1e3);
        }
        size += bytes.length;
        stats.batches += 1;
        stats.records += batch.length;
        stats.bytes += bytes.length;
      } catch (error) {
        failure = new Error(`Cannot append to log in ${dir}: ${errorMessage(error)}`, {
          cause: error,
        });
        for (const pending of [...batch, ...queue.splice(0)]) pending.done.reject(failure);
        return;
      }
      const now = timings ? performance.now() : 0;
      for (const pending of batch) {
        if (timings) timings.durable((now - pending.since) / 1e3);
        pending.done.resolve(pending.record);
        for (const listener of listeners) listener(pending.record);
      }
    }
  }

  function kick() {
    writing ??= pump().finally(() => {
      writing = null;
      if (queue.length > 0 && failure === null) kick();
    });
  }

  return {
    get lastSeq() {
      return lastSeq;
    },
    get firstSeq() {
      return Math.min(firstSeq, lastSeq + 1);
    },
    async *records(after = 0) {
      // Walked once, at start; what was appended since is the engine's own.
      if (replayed || openedAt <= after) return;
      replayed = true;
      yield* readLog(dir, { from: after + 1, to: openedAt });
    },
    async flush() {
      await lastAppend;
    },
    append(entry: NewRecord) {
      if (failure) return Promise.reject(failure);
      if (closed) return Promise.reject(new Error("Cannot append to log: the store is closed"));
      const record: LogRecord = { seq: ++lastSeq, ...entry };
      const done = Promise.withResolvers<LogRecord>();
      const since = timings ? performance.now() : 0;
      queue.push({ bytes: encodeRecord(record), record, done, since });
      kick();
      lastAppend = done.promise;
      return done.promise;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stats() {
      return { ...stats };
    },
    async close() {
      closed = true;
      while (writing) await writing;
      file.close();
    },
  };
}

const NEWLINE = 0x0a;
const TAIL_WINDOW = 64 * 1024;

/**
 * Where the good records of the last segment end, and the sequence number of the last one, from
 * its last bytes alone. Only a torn record — bytes after the last end of line, what a crash in the
 * middle of a write leaves — is cut off, with a warning: it was never acknowledged. A complete
 * line that does not decode may have been acknowledged: that is damage, as anywhere else.
 */
async function readTail(
  path: string,
  firstSeq: number,
  warn: (message: string) => void,
): Promise<{ size: number; lastSeq: number }> {
  using file = await Deno.open(path, { read: true });
  const length = (await file.stat()).size;
  for (let window = TAIL_WINDOW;; window *= 2) {
    const start = Math.max(0, length - window);
    const bytes = await readAt(file, start, length - start);
    const found = lastGoodRecord(path, bytes, start, firstSeq);
    if (found) {
      if (found.size < length) {
        warn(
          `Cut off a torn last record in ${path} at byte ${found.size} ` +
            `(${length - found.size} bytes: record has no end of line); it was never acknowledged`,
        );
      }
      return found;
    }
  }
}

/** The last good record in `bytes` (read from `start`); null when the window must grow. */
function lastGoodRecord(
  path: string,
  bytes: Uint8Array,
  start: number,
  firstSeq: number,
): { size: number; lastSeq: number } | null {
  const end = bytes.lastIndexOf(NEWLINE) + 1;
  if (end === 0 && start > 0) return null;
  if (end === 0) return { size: 0, lastSeq: firstSeq - 1 };
  const lineStart = bytes.lastIndexOf(NEWLINE, end - 2) + 1;
  if (lineStart === 0 && start > 0) return null;
  const result = decodeRecord(bytes, lineStart);
  if (!result.ok) throw new LogDamagedError(path, start + lineStart, result.reason);
  return { size: start + end, lastSeq: result.record.seq };
}

async function readAt(file: Deno.FsFile, offset: number, length: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  await file.seek(offset, Deno.SeekMode.Start);
  let read = 0;
  while (read < length) {
    const n = await file.read(bytes.subarray(read));
    if (n === null) break;
    read += n;
  }
  return bytes.subarray(0, read);
}

function concat(batch: Pending[]): Uint8Array {
  if (batch.length === 1) return batch[0]!.bytes;
  let length = 0;
  for (const pending of batch) length += pending.bytes.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const pending of batch) {
    out.set(pending.bytes, offset);
    offset += pending.bytes.length;
  }
  return out;
}

function writeAllSync(file: Deno.FsFile, bytes: Uint8Array) {
  let written = 0;
  while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
}

async function syncDir(dir: string) {
  using handle = await Deno.open(dir, { read: true });
  await handle.sync();
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
