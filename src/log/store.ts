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
 * decided again once this node has seen the actor move from `expected` to `version`.
 */
export class AppendConflictError extends AppendFailedError {
  override name = "AppendConflictError";
  constructor(readonly actor: string, readonly version: number, readonly expected: number) {
    super(`another node changed ${actor} first (it is at version ${version})`);
  }
}

/** One actor as a shared log keeps it in place of its compacted records. */
export type ActorSnapshot = {
  id: string;
  /** Its machine's state name and its context as JSON. */
  state: unknown;
  context: unknown;
  /** The version of its kind's machine that took it: another version cannot read the context. */
  v: number;
};

/**
 * A log several Berths share, each a node. An actor's version is the sequence number of its last
 * record in the log (0 when it has none, or was dropped); an append names the version its
 * decision saw and is refused (AppendConflictError) when another node appended first. What the
 * other nodes append reaches this one through `onRemote`, in the log's order.
 *
 * Each actor's part of the log is kept short: `compact` puts the actor's snapshot in place of its
 * records, or drops a finished actor whole, and every node hears of a drop through `onDropped`,
 * in order with the records. A start reads the snapshots and the records after them.
 */
export interface SharedEventStore extends EventStore {
  /** This node's name. */
  readonly node: string;
  /** Appends `record` if its actor is still at `version`; resolves once it is durable. */
  appendAt(record: NewRecord, version: number): Promise<LogRecord>;
  /** The actor's version as of open. */
  openVersion(actor: string): number;
  /** The actors' snapshots as of open; `records()` gives what came after each. */
  openSnapshots(): Iterable<ActorSnapshot>;
  /** Every actor with records or a snapshot at open, with how many records follow its snapshot. */
  openBacklogs(): Iterable<[actor: string, records: number]>;
  /**
   * If the actor is still at `version`: keeps `snapshot` (the actor right after that record) in
   * place of its records, or with null drops the actor whole (it finished). Resolves to false
   * when another node appended or compacted first; nothing is lost then either.
   */
  compact(actor: string, version: number, snapshot: ActorSnapshot | null): Promise<boolean>;
  /**
   * Calls `listener` for every record another node appends, once, in order. A record the store
   * could not read comes with `unreadable` (why): it still counts towards its actor's version.
   */
  onRemote(listener: (record: LogRecord, unreadable?: string) => void): () => void;
  /**
   * Calls `listener` when an actor is dropped by any node, at sequence number `seq`, in order
   * with the records: its version is 0 from then on.
   */
  onDropped(listener: (actor: string, seq: number) => void): () => void;
}

/** Whether `store` is shared by several nodes. */
export function isShared(store: EventStore): store is SharedEventStore {
  return "onRemote" in store && typeof (store as SharedEventStore).onRemote === "function";
}
