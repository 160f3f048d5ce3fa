// The file event store: segments of log lines in <state-dir>/log, group-committed with one
// write and one fdatasync per batch. Knows nothing of the engine.
import { join } from "node:path";
import { decodeRecord, encodeRecord } from "./record.ts";
import type { EventStore, LogRecord, NewRecord } from "./store.ts";

/** A log that cannot be read safely: names the segment and the byte offset. */
export class LogDamagedError extends Error {
  override name = "LogDamagedError";
  constructor(readonly file: string, readonly offset: number, reason: string) {
    super(`Cannot read log: ${file} is damaged at byte ${offset}: ${reason}`);
  }
}

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

/** A segment's file name: the sequence number of its first record, 20 digits, `.log`. */
export const SEGMENT_REGEXP = /^(\d{20})\.log$/;
const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

export function segmentName(firstSeq: number): string {
  return `${String(firstSeq).padStart(20, "0")}.log`;
}

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
  let loaded: LogRecord[] | null = [];
  let lastSeq = 0;
  let size = 0;
  let totalBytes = 0;
  for (const [index, name] of names.entries()) {
    const path = join(dir, name);
    const bytes = await Deno.readFile(path);
    const isLast = index === names.length - 1;
    size = await readSegment(path, bytes, isLast, loaded, warn);
    totalBytes += size;
    if (size < bytes.length) await Deno.truncate(path, size);
    lastSeq = loaded.at(-1)?.seq ?? lastSeq;
  }
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
    *records() {
      const records = loaded ?? [];
      loaded = null;
      yield* records;
    },
    append(entry: NewRecord) {
      if (failure) return Promise.reject(failure);
      if (closed) return Promise.reject(new Error("Cannot append to log: the store is closed"));
      const record: LogRecord = { seq: ++lastSeq, ...entry };
      const done = Promise.withResolvers<LogRecord>();
      const since = timings ? performance.now() : 0;
      queue.push({ bytes: encodeRecord(record), record, done, since });
      kick();
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

/** Records decoded between two turns of the event loop (health checks answer during a start). */
const SLICE = 4096;

/** Decodes one segment into `into`; returns how many bytes of it are good. */
async function readSegment(
  path: string,
  bytes: Uint8Array,
  isLast: boolean,
  into: LogRecord[],
  warn: (message: string) => void,
): Promise<number> {
  let offset = 0;
  let count = 0;
  while (offset < bytes.length) {
    if (++count % SLICE === 0) await new Promise((resolve) => setTimeout(resolve, 0));
    const result = decodeRecord(bytes, offset);
    if (result.ok) {
      const expected = (into.at(-1)?.seq ?? result.record.seq - 1) + 1;
      if (result.record.seq !== expected) {
        throw new LogDamagedError(
          path,
          offset,
          `sequence ${result.record.seq}, expected ${expected}`,
        );
      }
      into.push(result.record);
      offset = result.next;
      continue;
    }
    const lineEnd = bytes.indexOf(0x0a, offset);
    const atEnd = result.torn || lineEnd === bytes.length - 1;
    if (!isLast || !atEnd) throw new LogDamagedError(path, offset, result.reason);
    warn(
      `Cut off a torn last record in ${path} at byte ${offset} ` +
        `(${bytes.length - offset} bytes: ${result.reason}); it was never acknowledged`,
    );
    return offset;
  }
  return offset;
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
