// The event store interface and the record type: what the engine sees of the log.
// Imports nothing of the engine; the file and memory stores implement this.

/** One event as it lies in the log. */
export type LogRecord = {
  /** 1, 2, 3, … in log order; never reused. */
  seq: number;
  /** Milliseconds since the epoch: when the engine decided the event. */
  at: number;
  /** The actor the event belongs to, e.g. `volume/db-data`. */
  actor: string;
  /** The event type, e.g. `volume.mount`, `effect.succeeded`. */
  type: string;
  /** Version of the actor's machine that wrote the record. */
  v: number;
  /** The event's fields besides `type` and `at`. */
  data: Record<string, unknown>;
};

export type NewRecord = Omit<LogRecord, "seq">;

/** An append-only, durable sequence of records owned by one engine. */
export interface EventStore {
  /** Sequence number of the last record, 0 when empty. */
  readonly lastSeq: number;
  /**
   * The first record the store still holds: 1, or later once compaction removed older segments
   * (a snapshot then stands for them); lastSeq + 1 when empty.
   */
  readonly firstSeq: number;
  /**
   * Every record after sequence `after` (default 0: from the first), in order, up to the last
   * one at open; meant to be walked once, at start. The file store streams them from disk
   * (asynchronously), segment by segment.
   */
  records(after?: number): Iterable<LogRecord> | AsyncIterable<LogRecord>;
  /** Appends one record; resolves once it is durable (after its batch's fdatasync). */
  append(record: NewRecord): Promise<LogRecord>;
  /** Resolves once every record appended so far is durable (rejects if the log failed). */
  flush(): Promise<void>;
  /** Calls `listener` for every record once it is durable; returns the unsubscribe function. */
  subscribe(listener: (record: LogRecord) => void): () => void;
  /** Waits for every pending append, syncs and releases the store. */
  close(): Promise<void>;
}

/**
 * An append that did not reach the log and never will: its sequence number is given to the next
 * record, and whoever stepped ahead on it must step back. The message says why (the disk's error).
 */
export class AppendFailedError extends Error {
  override name = "AppendFailedError";
}

/**
 * An append that did not reach the disk within the store's timeout (a stalled disk): it is still
 * queued and may yet be written. `written` settles when it and every append rejected with it are
 * durable, or rejects if the log failed meanwhile (then memory is ahead of the log).
 */
export class AppendStalledError extends Error {
  override name = "AppendStalledError";
  constructor(message: string, readonly written: Promise<void>) {
    super(message);
  }
}
