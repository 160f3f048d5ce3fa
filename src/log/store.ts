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

/**
 * An append refused because another node changed the actor first (a store several Berths
 * share): as AppendFailedError, whoever stepped ahead on it steps back; then the command is
 * decided again once this node has seen the actor at `version`.
 */
export class AppendConflictError extends AppendFailedError {
  override name = "AppendConflictError";
  constructor(readonly actor: string, readonly version: number) {
    super(`another node changed ${actor} first (it is at version ${version})`);
  }
}

/**
 * A log several Berths share, each a node. An actor's version is the number of its records in
 * the log; an append names the version its decision saw and is refused (AppendConflictError)
 * when another node appended first. What the other nodes append reaches this one through
 * `onRemote`, in the log's order.
 */
export interface SharedEventStore extends EventStore {
  /** This node's name. */
  readonly node: string;
  /** Appends `record` if its actor is still at `version`; resolves once it is durable. */
  appendAt(record: NewRecord, version: number): Promise<LogRecord>;
  /** The actor's version in the records this store gave at open (`records()`). */
  openVersion(actor: string): number;
  /** Calls `listener` for every record another node appends, once, in order. */
  onRemote(listener: (record: LogRecord) => void): () => void;
}

/** Whether `store` is shared by several nodes. */
export function isShared(store: EventStore): store is SharedEventStore {
  return "onRemote" in store && typeof (store as SharedEventStore).onRemote === "function";
}
