// Checkpoints: a snapshot of every live actor every so many events or bytes of log, and at a
// clean stop, then compaction of what the snapshots make unneeded. A start then replays only the
// log after the newest snapshot. A snapshot that fails is a warning: the log is still the truth.
import { type Pruned, pruneLog } from "../log/compaction.ts";
import type { EventStore } from "../log/store.ts";
import type { Engine } from "./engine.ts";
import { saveSnapshot } from "./snapshots.ts";

export type CheckpointPolicy = {
  /**
   * Take a snapshot once this many events were logged since the last one — or once as many as
   * the last snapshot had actors, if that is more: a snapshot costs in proportion to the live
   * actors, so this keeps its share of each event's cost constant on a host with 100,000.
   */
  everyEvents: number;
  /** … or once the log grew by this many bytes. */
  everyBytes: number;
  /** How many snapshots (and the log since the oldest of them) are kept. */
  keep: number;
};

export const DEFAULT_CHECKPOINT_POLICY: CheckpointPolicy = {
  everyEvents: 20_000,
  everyBytes: 64 * 1024 * 1024,
  keep: 3,
};

/** What one checkpoint did. */
export type Checkpoint = {
  seq: number;
  actors: number;
  bytes: number;
  file: string;
  seconds: number;
  pruned: Pruned;
};

export type Checkpointer = {
  /** Takes a snapshot now (after the one in progress, if any); null when nothing is new. */
  checkpoint(): Promise<Checkpoint | null>;
  /** Stops taking snapshots by itself and waits for the one in progress. */
  stop(): Promise<void>;
};

export function createCheckpointer(options: {
  engine: Engine;
  store: EventStore;
  dir: string;
  policy: CheckpointPolicy;
  /** The sequence number the newest snapshot on disk covers (0 for none). */
  since: number;
  /** How many live actors there are at start. */
  actors: number;
  /** The size of the log in bytes now. */
  logBytes: () => number;
  clock?: () => number;
  warn: (message: string) => void;
  /** Told of every checkpoint taken (metrics). */
  onCheckpoint?: (checkpoint: Checkpoint) => void;
}): Checkpointer {
  const { engine, store, dir, policy, warn } = options;
  const clock = options.clock ?? Date.now;
  let coveredSeq = options.since;
  let lastActors = options.actors;
  let coveredBytes = options.logBytes();
  let running: Promise<Checkpoint | null> | null = null;

  async function take(): Promise<Checkpoint | null> {
    const started = performance.now();
    const { seq, actors } = engine.capture();
    if (seq === coveredSeq) return null;
    // The snapshot may stand for records only once they are on disk.
    await store.flush();
    const written = await saveSnapshot(dir, seq, actors, clock());
    coveredSeq = seq;
    coveredBytes = options.logBytes();
    lastActors = actors.length;
    const pruned = await pruneLog(dir, { keep: policy.keep });
    const done: Checkpoint = {
      seq,
      actors: actors.length,
      bytes: written.bytes,
      file: written.path,
      seconds: (performance.now() - started) / 1e3,
      pruned,
    };
    options.onCheckpoint?.(done);
    return done;
  }

  function start(): Promise<Checkpoint | null> {
    const run = take().finally(() => {
      if (running === run) running = null;
    });
    running = run;
    return run;
  }

  const unsubscribe = store.subscribe((record) => {
    if (running) return;
    const due = record.seq - coveredSeq >= Math.max(policy.everyEvents, lastActors) ||
      // The size is looked at every 256 records: it is cheap, but this runs on every append.
      ((record.seq & 255) === 0 && options.logBytes() - coveredBytes >= policy.everyBytes);
    if (!due) return;
    start().catch((error) => warn(`Cannot take a snapshot: ${(error as Error).message}`));
  });

  return {
    async checkpoint() {
      while (running) await running.catch(() => {});
      return start();
    },
    async stop() {
      unsubscribe();
      while (running) await running.catch(() => {});
    },
  };
}
