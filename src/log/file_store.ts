// The file event store: segments of log lines in <state-dir>/log, group-committed with one
// write and one fdatasync per batch. Knows nothing of the engine.
import { join } from "node:path";
import { encodeRecord } from "./record.ts";
import { readTail } from "./_tail.ts";
import { errorMessage, syncDir, writeAll } from "./_file_io.ts";
import { openNoFollow, refuseSymlink, SymlinkRefusedError } from "./_no_follow.ts";
import { SNAPSHOT_REGEXP } from "./snapshot_file.ts";
import { readLog } from "./reader.ts";
import { LogDamagedError, SEGMENT_REGEXP, segmentName } from "./segments.ts";

export { LogDamagedError, SEGMENT_REGEXP, segmentName, SymlinkRefusedError };
import {
  AppendFailedError,
  AppendStalledError,
  type EventStore,
  type LogRecord,
  type NewRecord,
} from "./store.ts";

export type FileStoreOptions = {
  /** The directory that holds the segments; created (mode 0700) if missing. */
  dir: string;
  /** Where warnings go (a torn last record cut off). */
  warn: (message: string) => void;
  /** Start a new segment once the current one is larger than this. */
  segmentBytes?: number;
  /**
   * How long a batch may take to reach the disk before its callers are told (default 10 s); the
   * store then refuses new appends until the disk takes the stalled ones.
   */
  stallMs?: number;
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
export const DEFAULT_STALL_MS = 10_000;

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
  const stallMs = options.stallMs ?? DEFAULT_STALL_MS;
  // Never through a link: mkdir would create, and chmod change, whatever it points at.
  await refuseSymlink(dir);
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  await refuseSymlink(dir);
  await Deno.chmod(dir, 0o700);
  const names = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isSymlink && (SEGMENT_REGEXP.test(entry.name) || SNAPSHOT_REGEXP.test(entry.name))) {
      throw new SymlinkRefusedError(join(dir, entry.name));
    }
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
  let file = await openNoFollow(join(dir, current), {
    create: true,
    append: true,
    mode: 0o600,
  });
  await syncDir(dir);

  const queue: Pending[] = [];
  const listeners = new Set<(record: LogRecord) => void>();
  let writing: Promise<void> | null = null;
  let inFlight: Pending[] = [];
  // The last record known to be on disk; appends after it are in flight.
  let durableSeq = lastSeq;
  // Set while the segment may hold bytes of a failed batch: cut back to `size` before writing on.
  let failure: AppendFailedError | null = null;
  let recovering: Promise<void> | null = null;
  // Said once when the log stops taking writes, and once when it takes them again.
  let failing = false;
  // Set once a batch took longer than stallMs: callers were told, new appends are refused until
  // the disk took every append up to `until`.
  let stall: { until: number; written: PromiseWithResolvers<void> } | null = null;
  let closed = false;
  const stats: FileStoreStats = { batches: 0, records: 0, bytes: totalBytes };

  async function rotate(nextSeq: number) {
    // The new segment first: if it cannot be made, the current one is still open to cut back.
    const next = await openNoFollow(join(dir, segmentName(nextSeq)), {
      create: true,
      append: true,
      mode: 0o600,
    });
    file.close();
    file = next;
    size = 0;
    await syncDir(dir);
  }

  async function pump() {
    while (queue.length > 0 && failure === null) {
      const batch = queue.splice(0);
      inFlight = batch;
      // One timer per batch, not per append: a write stuck on a stalled disk tells its callers.
      const timer = stall ? undefined : setTimeout(stalled, stallMs);
      try {
        if (size >= segmentBytes) await rotate(batch[0]!.record.seq);
        const bytes = concat(batch);
        // Both asynchronous, on the blocking thread pool: a stalled disk must not stop the event
        // loop, and appends arriving meanwhile join the next batch.
        await writeAll(file, bytes);
        const syncStart = timings ? performance.now() : 0;
        await file.syncData();
        if (timings) {
          timings.batch(batch.length, bytes.length, (performance.now() - syncStart) / 1e3);
        }
        size += bytes.length;
        stats.batches += 1;
        stats.records += batch.length;
        stats.bytes += bytes.length;
        durableSeq = batch.at(-1)!.record.seq;
        if (failing || stall) written();
      } catch (error) {
        fail(batch, error);
        return;
      } finally {
        clearTimeout(timer);
      }
      const now = timings ? performance.now() : 0;
      for (const pending of batch) {
        if (timings) timings.durable((now - pending.since) / 1e3);
        pending.done.resolve(pending.record);
        for (const listener of listeners) listener(pending.record);
      }
    }
  }

  /** The batch in flight took stallMs: its callers and those queued behind are told now. */
  function stalled() {
    stall = { until: lastSeq, written: Promise.withResolvers<void>() };
    stall.written.promise.catch(() => {}); // for whoever waits on it
    const error = new AppendStalledError(
      `the log in ${dir} did not reach the disk within ${stallMs / 1e3} s (a stalled or ` +
        `frozen disk?); the change may still be recorded once it does`,
      stall.written.promise,
    );
    warn(
      `the log in ${dir} has not reached the disk for ${stallMs / 1e3} s (a stalled or frozen ` +
        `disk?); calls that change state are refused until it does`,
    );
    for (const pending of inFlight) pending.done.reject(error);
    for (const pending of queue) pending.done.reject(error);
  }

  /** After a good batch: says the log is written again, once every stalled append is on disk. */
  function written() {
    if (stall && durableSeq >= stall.until) {
      stall.written.resolve();
      stall = null;
      warn(`the log in ${dir} reached the disk again, at sequence ${durableSeq}`);
    } else if (failing && !stall) {
      warn(`the log in ${dir} is written again, up to sequence ${durableSeq}`);
    }
    if (!stall) failing = false;
  }

  /**
   * A batch could not be written or synced (a full disk, an I/O error): none of it, nor anything
   * queued behind it, is acknowledged. Their sequence numbers go back to the next appends, and the
   * segment is cut back to its last durable byte before anything else is written.
   */
  function fail(batch: Pending[], error: unknown) {
    failure = new AppendFailedError(`the log in ${dir} cannot be written: ${errorMessage(error)}`, {
      cause: error,
    });
    if (!failing) warn(`${failure.message}; calls that change state are refused until it can`);
    failing = true;
    lastSeq = durableSeq;
    for (const pending of [...batch, ...queue.splice(0)]) pending.done.reject(failure);
    // Appends told they might still be written never will be: whoever kept them must know.
    stall?.written.reject(failure);
    stall = null;
    recover();
  }

  /** Cuts the segment back to its last durable byte; the store takes appends again once done. */
  function recover() {
    recovering ??= (async () => {
      try {
        await file.truncate(size);
        await file.syncData();
        failure = null;
      } catch {
        // Tried again by the next append: the disk may have room or be back by then.
      } finally {
        recovering = null;
      }
    })();
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
      // After a failed batch the lost appends are forgotten: what is left is all durable.
      if (durableSeq !== lastSeq) await lastAppend;
    },
    append(entry: NewRecord) {
      if (failure) {
        recover();
        // A new error each time: each refused append steps back its own actor.
        return Promise.reject(new AppendFailedError(failure.message, { cause: failure.cause }));
      }
      if (stall) {
        return Promise.reject(
          new AppendFailedError(
            `the log in ${dir} is stalled: a write has not reached the disk for over ` +
              `${stallMs / 1e3} s`,
          ),
        );
      }
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
      while (writing || recovering) await (writing ?? recovering);
      file.close();
    },
  };
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
