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
const MAX_RECORDS = 128;

export function createLiveModel(engine: Engine, lastSeq: number): LiveModel {
  const actors = new Map<string, AnyMachineSnapshot>();
  for (const kind of Object.keys(KINDS) as KindName[]) {
    for (const [id, snapshot] of engine.list(kind)) actors.set(id, snapshot);
  }
  const listeners = new Set<(batch: FeedBatch) => void>();
  let seq = lastSeq;
  let pending: LogRecord[] = [];
  let skipped = 0;
  const touched = new Map<string, AnyMachineSnapshot>();
  let timer: ReturnType<typeof setTimeout> | null = null;

  const stopObserving = engine.observe((record, snapshot) => {
    seq = record.seq;
    if (snapshot.status === "done") actors.delete(record.actor);
    else actors.set(record.actor, snapshot);
    if (listeners.size === 0) return;
    // Trimmed in halves, not one shift per event: constant cost per event under a flood.
    if (pending.length === 2 * MAX_RECORDS) {
      pending = pending.slice(MAX_RECORDS);
      skipped += MAX_RECORDS;
    }
    pending.push(record);
    touched.set(record.actor, snapshot);
    timer ??= setTimeout(flush, FLUSH_MS);
  });

  function flush() {
    timer = null;
    const cut = Math.max(0, pending.length - MAX_RECORDS);
    const batch: FeedBatch = {
      lastSeq: seq,
      records: pending.slice(cut).map(feedRecord),
      skipped: skipped + cut,
      actors: [...touched].map(([id, snapshot]) => actorView(id, snapshot)),
    };
    pending = [];
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
