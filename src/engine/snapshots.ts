// The engine's actors to and from snapshot files: which snapshot a start can trust, and how an
// actor's xstate snapshot becomes a file entry and back. The file format is the log's
// (log/snapshot_file.ts); the machines say how their contexts become JSON (machines/mod.ts).
import type { AnyMachineSnapshot } from "xstate";
import { KINDS } from "../../machines/mod.ts";
import {
  listSnapshots,
  readSnapshot,
  SnapshotDamagedError,
  type SnapshotEntry,
  type SnapshotHeader,
  writeSnapshot,
} from "../log/snapshot_file.ts";
import { snapshotIn, splitActorId, yieldToEventLoop } from "./replay.ts";

/** Where replay starts: every live actor right after record `seq` (0: the very beginning). */
export type ReplayBase = {
  seq: number;
  actors: Map<string, AnyMachineSnapshot>;
  /** The snapshot file it came from; null for the beginning of the log. */
  file: string | null;
};

/** No snapshot covers the records a start needs, and the log no longer holds them. */
export class HistoryCompactedError extends Error {
  override name = "HistoryCompactedError";
}

/** Each kind's machine version now: a snapshot taken under another cannot be read. */
export function machineVersions(): Record<string, number> {
  return Object.fromEntries(Object.entries(KINDS).map(([name, kind]) => [name, kind.version]));
}

/** The entries of a snapshot of `actors`, made one at a time as the file is written. */
export function* snapshotEntries(
  actors: readonly [string, AnyMachineSnapshot][],
): Generator<SnapshotEntry> {
  for (const [id, snapshot] of actors) {
    const { kind } = splitActorId(id);
    yield { id, state: snapshot.value, context: kind.persist(snapshot.context) };
  }
}

/** Writes a snapshot of `actors` as they stand right after record `seq` (on disk already). */
export function saveSnapshot(
  dir: string,
  seq: number,
  actors: readonly [string, AnyMachineSnapshot][],
  at: number,
): Promise<{ path: string; bytes: number }> {
  const header = { seq, at, versions: machineVersions() };
  return writeSnapshot(dir, header, actors.length, snapshotEntries(actors));
}

/** How many actors are restored between turns of the event loop. */
const SLICE = 4096;

/** The actors of a snapshot file, checked entry by entry against today's machines. */
export async function restoreSnapshot(
  header: SnapshotHeader,
  entries: SnapshotEntry[],
): Promise<Map<string, AnyMachineSnapshot>> {
  const versions = machineVersions();
  for (const [name, version] of Object.entries(header.versions)) {
    if (versions[name] !== undefined && versions[name] !== version) {
      throw new Error(
        `taken with version ${version} of the ${name} machine; this Berth runs ${versions[name]}`,
      );
    }
  }
  const actors = new Map<string, AnyMachineSnapshot>();
  let count = 0;
  for (const { id, state, context } of entries) {
    const { kind } = splitActorId(id);
    if (typeof state !== "string") throw new Error(`${id} has no state name`);
    const snapshot = snapshotIn(kind.machine, state, kind.restore(context));
    if (snapshot.status !== "active") throw new Error(`${id} is in a final state`);
    actors.set(id, snapshot);
    if (++count % SLICE === 0) await yieldToEventLoop();
  }
  return actors;
}

/** Where the log on disk stands, as the store found it at open. */
export type LogExtent = {
  /** The first record the segments hold (1 unless compacted); lastSeq + 1 for an empty log. */
  firstSeq: number;
  lastSeq: number;
};

/**
 * The newest snapshot a start can stand on: at most the end of the log, no gap between it and
 * the first record kept, and whole (checksums, count, end line, machine versions). A damaged one
 * is passed over with a warning for the one before it; with none, the beginning of the log if
 * the log still starts there.
 */
export async function loadReplayBase(
  dir: string,
  log: LogExtent,
  warn: (message: string) => void,
  /** For time travel: the state wanted is the one right after this record. */
  at?: number,
): Promise<ReplayBase> {
  const snapshots = await listSnapshots(dir);
  let passedOver = false;
  for (const { path, seq } of snapshots.toReversed()) {
    if (at !== undefined && seq > at) continue;
    if (seq > log.lastSeq) {
      warn(`Snapshot ${path} is past the end of the log (sequence ${log.lastSeq}); not used`);
      passedOver = true;
      continue;
    }
    if (seq + 1 < log.firstSeq) break; // older ones leave a gap too
    try {
      const { header, entries } = await readSnapshot(path);
      if (header.seq !== seq) throw new Error(`its header says sequence ${header.seq}`);
      return { seq, actors: await restoreSnapshot(header, entries), file: path };
    } catch (error) {
      const why = error instanceof SnapshotDamagedError
        ? error.message
        : `Snapshot ${path} cannot be used: ${(error as Error).message}`;
      warn(`${why}; trying an older one`);
      passedOver = true;
    }
  }
  if (log.firstSeq > 1 && at !== undefined) {
    const oldest = snapshots.find((snapshot) => snapshot.seq + 1 >= log.firstSeq);
    throw new HistoryCompactedError(
      `Cannot show the state at sequence ${at}: the log before sequence ${log.firstSeq} was ` +
        `compacted; the oldest state kept is at sequence ${oldest?.seq ?? log.firstSeq - 1}`,
    );
  }
  if (log.firstSeq > 1) {
    throw new HistoryCompactedError(
      `Cannot rebuild the state: the log starts at sequence ${log.firstSeq} (older segments were ` +
        `compacted) and no good snapshot covers what came before`,
    );
  }
  if (passedOver) warn("Replaying the whole log instead");
  return { seq: 0, actors: new Map(), file: null };
}

/**
 * Where one actor's history can start: null when the log still starts at its first record; else
 * the oldest snapshot the log joins on to, and the actor in it (null if it did not exist then).
 */
export async function historyStart(
  dir: string,
  firstSeq: number,
  actorId: string,
): Promise<{ seq: number; snapshot: AnyMachineSnapshot | null } | null> {
  if (firstSeq <= 1) return null;
  for (const { path, seq } of await listSnapshots(dir)) {
    if (seq + 1 < firstSeq) continue;
    const { header, entries } = await readSnapshot(path);
    const entry = entries.find((candidate) => candidate.id === actorId);
    if (!entry) return { seq, snapshot: null };
    const restored = await restoreSnapshot(header, [entry]);
    return { seq, snapshot: restored.get(actorId) ?? null };
  }
  throw new HistoryCompactedError(
    `Cannot show the history of ${actorId}: the log before sequence ${firstSeq} was compacted ` +
      `and no snapshot covers it`,
  );
}
