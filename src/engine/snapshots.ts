// The engine's actors to and from snapshot files: which snapshot a start can trust, and how an
// actor's xstate snapshot becomes a file entry and back. The file format is the log's
// (log/snapshot_file.ts); the machines say how their contexts become JSON (machines/mod.ts).
// A delta snapshot holds only what changed since the snapshot it names as its base; a chain of
// deltas ends at a full snapshot, and the state at a delta is that full one with each delta laid
// over it in turn.
import type { AnyMachineSnapshot } from "xstate";
import { KINDS } from "../../machines/mod.ts";
import {
  listSnapshots,
  readSnapshotHeader,
  scanSnapshot,
  SnapshotDamagedError,
  type SnapshotEntry,
  type SnapshotFile,
  type SnapshotHeader,
  writeSnapshot,
} from "../log/snapshot_file.ts";
import type { ActorSnapshot } from "../log/store.ts";
import { SharedLogUnreadableError } from "../log/etcd_errors.ts";
import { describe } from "./_actor.ts";
import { snapshotIn, splitActorId, yieldToEventLoop } from "./replay.ts";

/** Where replay starts: every live actor right after record `seq` (0: the very beginning). */
export type ReplayBase = {
  seq: number;
  actors: Map<string, AnyMachineSnapshot>;
  /** The snapshot file it came from; null for the beginning of the log. */
  file: string | null;
  /** The full snapshot its chain starts from (its own sequence number when it is full). */
  fullSeq: number;
  /** How many deltas lie on that full snapshot in its chain (0 when it is full). */
  deltas: number;
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
  removed: readonly string[] = [],
): Generator<SnapshotEntry> {
  for (const [id, snapshot] of actors) {
    const { kind } = splitActorId(id);
    yield { id, state: snapshot.value, context: kind.persist(snapshot.context) };
  }
  for (const id of removed) yield { id, state: null, context: null };
}

/**
 * Writes a snapshot of `actors` as they stand right after record `seq` (on disk already): all
 * of them, or with `delta`, those changed since the snapshot at `delta.base` and the ids of
 * those gone since.
 */
export function saveSnapshot(
  dir: string,
  seq: number,
  actors: readonly [string, AnyMachineSnapshot][],
  at: number,
  delta: { base: number; removed: readonly string[] } | null = null,
): Promise<{ path: string; bytes: number }> {
  const header = { seq, base: delta?.base ?? 0, at, versions: machineVersions() };
  const removed = delta?.removed ?? [];
  return writeSnapshot(
    dir,
    header,
    actors.length + removed.length,
    snapshotEntries(actors, removed),
  );
}

/** How many actors are restored between turns of the event loop. */
const SLICE = 4096;

/** Refuses a snapshot taken under other machine versions: its contexts mean something else. */
function checkVersions(header: SnapshotHeader) {
  const versions = machineVersions();
  for (const [name, version] of Object.entries(header.versions)) {
    if (versions[name] !== undefined && versions[name] !== version) {
      throw new Error(
        `taken with version ${version} of the ${name} machine; this Berth runs ${versions[name]}`,
      );
    }
  }
}

/** Lays one entry over `into`: restored against today's machine, or deleted (state null). */
function restoreEntry(into: Map<string, AnyMachineSnapshot>, entry: SnapshotEntry) {
  const { id, state, context } = entry;
  if (state === null) {
    into.delete(id);
    return;
  }
  const { kind, name } = splitActorId(id);
  if (typeof state !== "string") throw new Error(`${id} has no state name`);
  const restored = kind.restore(context) as { name?: string; id?: string };
  if ((restored.name ?? restored.id) !== name) throw new Error(`${id} holds another's context`);
  const snapshot = snapshotIn(kind.machine, state, restored);
  if (snapshot.status !== "active") throw new Error(`${id} is in a final state`);
  into.set(id, snapshot);
}

/**
 * Lays the entries of one snapshot file over `into` (empty for a full one), each checked against
 * today's machines: same machine versions, a known state, not a final one.
 */
export async function restoreSnapshot(
  header: SnapshotHeader,
  entries: SnapshotEntry[],
  into: Map<string, AnyMachineSnapshot> = new Map(),
): Promise<Map<string, AnyMachineSnapshot>> {
  checkVersions(header);
  let count = 0;
  for (const entry of entries) {
    restoreEntry(into, entry);
    if (++count % SLICE === 0) await yieldToEventLoop();
  }
  return into;
}

/**
 * The actors a shared log keeps as snapshots (etcd), each checked against today's machines: an
 * actor's records before its snapshot are gone, so one that cannot be read stops the start.
 */
export async function restoreActorSnapshots(
  entries: Iterable<ActorSnapshot>,
): Promise<Map<string, AnyMachineSnapshot>> {
  const into = new Map<string, AnyMachineSnapshot>();
  let count = 0;
  for (const entry of entries) {
    try {
      const { kind, kindName } = splitActorId(entry.id);
      if (entry.v !== kind.version) {
        throw new Error(
          `taken with version ${entry.v} of the ${kindName} machine; this Berth runs ${kind.version}`,
        );
      }
      restoreEntry(into, entry);
    } catch (error) {
      throw new SharedLogUnreadableError(
        `Cannot read the snapshot of ${entry.id} in the shared log: ${describe(error)}`,
      );
    }
    if (++count % SLICE === 0) await yieldToEventLoop();
  }
  return into;
}

/** A snapshot file that cannot be used, with why (its own damage or that of one it builds on). */
export class SnapshotUnusableError extends Error {
  override name = "SnapshotUnusableError";
}

/**
 * Every live actor as `target` stands for them: its chain of deltas followed back to a full
 * snapshot, read whole and laid over each other oldest first.
 */
export async function materialize(
  target: SnapshotFile,
  files: readonly SnapshotFile[],
): Promise<{ actors: Map<string, AnyMachineSnapshot>; fullSeq: number; deltas: number }> {
  const bySeq = new Map(files.map((file) => [file.seq, file]));
  // The chain first, from the headers alone; then each file streamed over the last, oldest first,
  // so that no snapshot is ever whole in memory beside the actors it makes.
  const chain: SnapshotFile[] = [];
  for (let file: SnapshotFile | undefined = target; file;) {
    const header = await readSnapshotHeader(file.path).catch((error) => {
      throw linkError(error, file !== target);
    });
    if (header.seq !== file.seq) {
      throw new SnapshotUnusableError(`${file.path} says sequence ${header.seq} inside`);
    }
    checkVersions(header);
    chain.push(file);
    if (header.base === 0) break;
    file = bySeq.get(header.base);
    if (!file) {
      throw new SnapshotUnusableError(
        `it builds on the snapshot at sequence ${header.base}, which is not there`,
      );
    }
  }
  const actors = new Map<string, AnyMachineSnapshot>();
  for (const file of chain.toReversed()) {
    let count = 0;
    await scanSnapshot(file.path, async (entry) => {
      restoreEntry(actors, entry);
      if (++count % SLICE === 0) await yieldToEventLoop();
    }).catch((error) => {
      throw linkError(error, file !== target);
    });
  }
  return { actors, fullSeq: chain.at(-1)!.seq, deltas: chain.length - 1 };
}

/** Damage in a snapshot the target builds on is named as such. */
function linkError(error: unknown, isBase: boolean): unknown {
  if (error instanceof SnapshotDamagedError && isBase) {
    return new SnapshotUnusableError(`it builds on ${error.message}`);
  }
  return error;
}

/** Where the log on disk stands, as the store found it at open. */
export type LogExtent = {
  /** The first record the segments hold (1 unless compacted); lastSeq + 1 for an empty log. */
  firstSeq: number;
  lastSeq: number;
};

/**
 * The newest snapshot a start can stand on: at most the end of the log, no gap between it and
 * the first record kept, and whole with every snapshot it builds on (checksums, count, end line,
 * machine versions). A damaged one is passed over with a warning for the one before it; with
 * none, the beginning of the log if the log still starts there.
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
  for (const snapshot of snapshots.toReversed()) {
    const { path, seq } = snapshot;
    if (at !== undefined && seq > at) continue;
    if (seq > log.lastSeq) {
      warn(`Snapshot ${path} is past the end of the log (sequence ${log.lastSeq}); not used`);
      passedOver = true;
      continue;
    }
    if (seq + 1 < log.firstSeq) break; // older ones leave a gap too
    try {
      const { actors, fullSeq, deltas } = await materialize(snapshot, snapshots);
      return { seq, actors, file: path, fullSeq, deltas };
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
  return { seq: 0, actors: new Map(), file: null, fullSeq: 0, deltas: 0 };
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
  const snapshots = await listSnapshots(dir);
  const oldest = snapshots.find((snapshot) => snapshot.seq + 1 >= firstSeq);
  if (!oldest) {
    throw new HistoryCompactedError(
      `Cannot show the history of ${actorId}: the log before sequence ${firstSeq} was compacted ` +
        `and no snapshot covers it`,
    );
  }
  const { actors } = await materialize(oldest, snapshots);
  return { seq: oldest.seq, snapshot: actors.get(actorId) ?? null };
}
