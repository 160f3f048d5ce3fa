// Checkpoints: a snapshot of every live actor every so many events or bytes of log, and at a
// clean stop, then compaction of what the snapshots make unneeded. A start then replays only the
// log after the newest snapshot. A snapshot that fails is a warning: the log is still the truth.
import { type Pruned, pruneLog } from "../log/compaction.ts";
import type { EventStore } from "../log/store.ts";
import type { Engine } from "./engine.ts";
import { saveSnapshot } from "./snapshots.ts";

export type CheckpointPolicy = {
  /**
   * Take a snapshot once this many events were logged since the last one: a delta of the actors
   * that changed, or a full one when as many events as there are live actors came since the last
   * full one.
   */
  everyEvents: number;
  /** … or once the log grew by this many bytes. */
  everyBytes: number;
  /** How many snapshots (and the log since the oldest of them) are kept. */
  keep: number;
};

/** The most deltas laid on one full snapshot. */
export const MAX_CHAIN = 32;

export const DEFAULT_CHECKPOINT_POLICY: CheckpointPolicy = {
  everyEvents: 10_000,
  everyBytes: 64 * 1024 * 1024,
  keep: 3,
};

/** What one checkpoint did. */
export type Checkpoint = {
  seq: number;
  /** A delta (the actors changed since the snapshot before), or a full snapshot. */
  delta: boolean;
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
  /** The snapshot the start stood on: its sequence number (0 for none) and its chain's full one. */
  since: number;
  sinceFull: number;
  /** How many deltas lie on that full snapshot already. */
  sinceDeltas: number;
  /**
   * True when records were replayed after that snapshot: the engine did not see them change
   * their actors, so the next snapshot must be a full one.
   */
  replayedTail: boolean;
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
  let fullSeq = options.sinceFull;
  let deltas = options.sinceDeltas;
  // A delta is only right if every change since the snapshot before it was captured.
  let deltaSafe = coveredSeq > 0 && !options.replayedTail;
  let coveredBytes = options.logBytes();
  let running: Promise<Checkpoint | null> | null = null;

  async function take(): Promise<Checkpoint | null> {
    const started = performance.now();
    if (store.lastSeq === coveredSeq) return null;
    // A full snapshot costs in proportion to the live actors: one is taken only once as many
    // events as there are actors came since the last, so its share of each event stays the
    // same on a host with 100,000. In between, a delta of what changed.
    // A chain is read whole at every start: after MAX_CHAIN deltas (many clean stops with few
    // events between them) the next one is full however few events came.
    const { seq, full, actors, removed } = engine.capture((actorCount) =>
      !deltaSafe || store.lastSeq - fullSeq >= actorCount || deltas >= MAX_CHAIN
    );
    // Until this one is on disk, what the capture took of the changes is nowhere else: a failed
    // write leaves the next delta without it, so the next must be full.
    deltaSafe = false;
    // The snapshot may stand for records only once they are on disk.
    await store.flush();
    const written = full
      ? await saveSnapshot(dir, seq, actors, clock())
      : await saveSnapshot(dir, seq, actors, clock(), { base: coveredSeq, removed });
    coveredSeq = seq;
    if (full) fullSeq = seq;
    deltas = full ? 0 : deltas + 1;
    deltaSafe = true;
    coveredBytes = options.logBytes();
    const pruned = await pruneLog(dir, { keep: policy.keep });
    const done: Checkpoint = {
      seq,
      delta: !full,
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
    const due = record.seq - coveredSeq >= policy.everyEvents ||
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
