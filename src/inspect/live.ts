// The live read model behind the inspector: every actor as its last durable event left it, and a
// feed of what changed. Fed only by the engine's observe(); it never dispatches.
//
// On the call path it does one Map.set per event (plus a push while someone watches); masking and
// JSON happen when a batch goes out, at most every FLUSH_MS, so a watched Berth stays as fast.
import type { AnyMachineSnapshot } from "xstate";
import type { Engine } from "../engine/engine.ts";
import { type KindName, KINDS } from "../../machines/mod.ts";
import type { LogRecord } from "../log/store.ts";
import { type ActorView, actorView, maskSecrets } from "./view.ts";

/** One logged event as the feed shows it. */
export type FeedRecord = {
  seq: number;
  at: number;
  actor: string;
  type: string;
  data: unknown;
};

/**
 * What went out in one batch: the records logged since the last (the newest MAX_RECORDS of them;
 * `skipped` counts the rest) and the latest view of every actor they touched.
 */
export type FeedBatch = {
  lastSeq: number;
  records: FeedRecord[];
  skipped: number;
  /** Actors that changed, as they stand now; `status: "done"` means it is gone. */
  actors: ActorView[];
};

export type LiveModel = {
  /** Sequence number of the last durable event seen. */
  readonly lastSeq: number;
  /** Durable snapshots of every live actor. */
  readonly actors: ReadonlyMap<string, AnyMachineSnapshot>;
  /** Hears a batch at most every FLUSH_MS while events arrive; returns the unsubscribe function. */
  subscribe(listener: (batch: FeedBatch) => void): () => void;
  close(): void;
};

const FLUSH_MS = 250;
/**
 * Records kept for the next batch. Few on purpose: each one kept lives until the flush, long
 * enough for V8 to move it to the old generation, and under a flood that GC work is paid on the
 * call path. Whoever needs every record reads /api/log.
 */
const MAX_RECORDS = 32;

export function createLiveModel(engine: Engine, lastSeq: number): LiveModel {
  const actors = new Map<string, AnyMachineSnapshot>();
  for (const kind of Object.keys(KINDS) as KindName[]) {
    for (const [id, snapshot] of engine.list(kind)) actors.set(id, snapshot);
  }
  const listeners = new Set<(batch: FeedBatch) => void>();
  let seq = lastSeq;
  // A ring of the newest records: `count` of them end at `next - 1`.
  const ring: (LogRecord | undefined)[] = new Array(MAX_RECORDS);
  let next = 0;
  let count = 0;
  let skipped = 0;
  const touched = new Map<string, AnyMachineSnapshot>();
  let timer: ReturnType<typeof setTimeout> | null = null;

  const stopObserving = engine.observe((record, snapshot) => {
    seq = record.seq;
    if (snapshot.status === "done") actors.delete(record.actor);
    else actors.set(record.actor, snapshot);
    if (listeners.size === 0) return;
    if (count === MAX_RECORDS) skipped++;
    else count++;
    ring[next] = record;
    next = (next + 1) % MAX_RECORDS;
    touched.set(record.actor, snapshot);
    timer ??= setTimeout(flush, FLUSH_MS);
  });

  function flush() {
    timer = null;
    const records: FeedRecord[] = [];
    for (let i = count; i > 0; i--) {
      const index = (next - i + MAX_RECORDS) % MAX_RECORDS;
      records.push(feedRecord(ring[index]!));
      ring[index] = undefined;
    }
    const batch: FeedBatch = {
      lastSeq: seq,
      records,
      skipped,
      actors: [...touched].map(([id, snapshot]) => actorView(id, snapshot)),
    };
    count = 0;
    skipped = 0;
    touched.clear();
    for (const listener of listeners) listener(batch);
  }

  return {
    get lastSeq() {
      return seq;
    },
    actors,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      stopObserving();
      listeners.clear();
      if (timer !== null) clearTimeout(timer);
      timer = null;
    },
  };
}

/** A log record as shown outside: option values that look secret masked. */
export function feedRecord(record: LogRecord): FeedRecord {
  const { seq, at, actor, type, data } = record;
  return { seq, at, actor, type, data: maskSecrets(data) };
}
