// One actor's story from its log records: each event with the state after it and what became of
// it, across every life of the actor, and for a volume who holds it. Only reads; never dispatches.
import type { AnyMachineSnapshot } from "xstate";
import type { MountCounts, VolumeContext } from "../../machines/volume_machine.ts";
import { emittedIntents } from "../engine/engine.ts";
import { initialSnapshot, splitActorId, stepRecord } from "../engine/replay.ts";
import { historyStart } from "../engine/snapshots.ts";
import { listSegments, readLog } from "../log/reader.ts";
import type { LogRecord } from "../log/store.ts";
import { type ActorView, actorView, maskSecrets, stateName } from "./view.ts";

/** One event of the actor as an operator reads it. */
export type HistoryEntry = {
  seq: number;
  at: number;
  type: string;
  /** The record's data, secret option values masked. */
  data: unknown;
  /** State before and after the event. */
  from: string;
  state: string;
  /**
   * "applied"; "ignored" (did not change the actor); for an event that asked for an effect, that
   * effect's outcome: "succeeded", "failed: <reason>" or "in flight"; for effect.* records their
   * own "succeeded" / "failed: <reason>".
   */
  outcome: string;
};

/** A mount ID that holds a volume, how many Mounts without Unmount, and since which event. */
export type MountHolder = { mountId: string; count: number; since: number; seq: number };

export type ActorHistory = {
  /** The actor now (after the last record read), or null if it does not exist. */
  actor: ActorView | null;
  entries: HistoryEntry[];
  /** For a live volume: the mount IDs that hold it (why `docker volume rm` is refused). */
  holders: MountHolder[];
};

type Records = Iterable<LogRecord> | AsyncIterable<LogRecord>;
type Since = Map<string, { at: number; seq: number }>;

/** What is left once every entry is out: the actor now, and who holds it if it is a volume. */
export type HistoryEnd = Omit<ActorHistory, "entries">;

/** Folds the records of `actorId` among `records` (others are passed over) into its history. */
export async function actorHistory(
  records: Records,
  actorId: string,
  start: AnyMachineSnapshot | null = null,
): Promise<ActorHistory> {
  const entries: HistoryEntry[] = [];
  const fold = historyEntries(records, actorId, start);
  let next = await fold.next();
  for (; !next.done; next = await fold.next()) entries.push(next.value);
  return { actor: next.value.actor, entries, holders: next.value.holders };
}

/**
 * The same fold, streamed: yields each entry once its outcome is known (an event that asked for
 * an effect waits for the effect.* record after it), returns the actor now and its holders. Holds
 * only the entries of one effect in flight, however long the history.
 */
export async function* historyEntries(
  records: Records,
  actorId: string,
  /** The actor before the first of `records`, when compaction removed the records before. */
  start: AnyMachineSnapshot | null = null,
): AsyncGenerator<HistoryEntry, HistoryEnd> {
  const { kindName } = splitActorId(actorId);
  const since: Since = new Map();
  let snapshot: AnyMachineSnapshot | null = start;
  // The entry whose intent awaits its effect.* outcome, and the entries held back behind it.
  let waiting: HistoryEntry | null = null;
  let held: HistoryEntry[] = [];
  for await (const record of records) {
    if (record.actor !== actorId) continue;
    // A final state ends a life; the next event starts a new one (a volume created again).
    const before: AnyMachineSnapshot = snapshot && snapshot.status !== "done"
      ? snapshot
      : initialSnapshot(actorId);
    // The engine's own step: xstate's transition() builds a throwaway actor per call.
    const [next, actions] = stepRecord(before, record);
    const entry = entryOf(record, before, next);
    held.push(entry);
    if (next !== before) {
      if (record.type.startsWith("effect.")) {
        if (waiting) waiting.outcome = entry.outcome;
        waiting = null;
      } else if (emittedIntents(actions).length > 0) {
        entry.outcome = "in flight";
        waiting = entry;
      }
      if (kindName === "volume") trackMounts(since, before, next, record);
      snapshot = next;
    }
    // Out goes everything before the entry still waiting (an earlier one never got an outcome).
    const wait = waiting === null ? held.length : held.indexOf(waiting);
    if (wait > 0) {
      yield* held.slice(0, wait);
      held = held.slice(wait);
    }
  }
  yield* held;
  const live = snapshot && snapshot.status !== "done" ? snapshot : null;
  return {
    actor: live && actorView(actorId, live),
    holders: live && kindName === "volume" ? mountHolders(live, since) : [],
  };
}

function entryOf(
  record: LogRecord,
  before: AnyMachineSnapshot,
  next: AnyMachineSnapshot,
): HistoryEntry {
  return {
    seq: record.seq,
    at: record.at,
    type: record.type,
    data: maskSecrets(record.data),
    from: stateName(before),
    state: stateName(next),
    outcome: next === before
      ? "ignored"
      : record.type.startsWith("effect.")
      ? effectOutcome(record)
      : "applied",
  };
}

/**
 * One actor's history from the log in `logDir` up to record `to`: from its first event, or, when
 * compaction removed the start of the log, from the oldest kept snapshot (`compactedBefore` then
 * says from which sequence number on the history is whole).
 */
export async function compactedHistory(
  logDir: string,
  actorId: string,
  to?: number,
): Promise<ActorHistory & { compactedBefore: number | null }> {
  const start = await historyStart(logDir, await firstSeqOf(logDir), actorId);
  const from = (start?.seq ?? 0) + 1;
  const records = readLog(logDir, { actor: actorId, from, ...(to === undefined ? {} : { to }) });
  const history = await actorHistory(records, actorId, start?.snapshot ?? null);
  return { ...history, compactedBefore: start ? from : null };
}

/** The first record the segments of `logDir` hold: 1 unless compaction removed older ones. */
export async function firstSeqOf(logDir: string): Promise<number> {
  return (await listSegments(logDir))[0]?.firstSeq ?? 1;
}

/** The actor as it stood right after record `seq`, or null if it did not exist then. */
export async function actorStateAt(
  records: Records,
  actorId: string,
  seq: number,
): Promise<ActorView | null> {
  async function* upTo() {
    for await (const record of records) {
      if (record.seq > seq) return;
      yield record;
    }
  }
  return (await actorHistory(upTo(), actorId)).actor;
}

function effectOutcome(record: LogRecord): string {
  if (record.type === "effect.failed") return `failed: ${String(record.data.reason ?? "?")}`;
  return record.type === "effect.succeeded" ? "succeeded" : record.type.slice("effect.".length);
}

function mountsOf(snapshot: AnyMachineSnapshot): MountCounts | null {
  return (snapshot.context as Partial<VolumeContext>).mounts ?? null;
}

/**
 * Notes when a mount ID went from not holding to holding, and forgets it once let go. Only the IDs
 * the record names can change (its mountId, or the one in flight), so this costs the same for a
 * volume held by one ID or by 10,000.
 */
function trackMounts(
  since: Since,
  before: AnyMachineSnapshot,
  next: AnyMachineSnapshot,
  record: LogRecord,
) {
  const was = mountsOf(before);
  const now = mountsOf(next);
  if (was === now || now === null) return;
  const named = record.data.mountId;
  const pending = (before.context as Partial<VolumeContext>).pending;
  for (const mountId of [named, pending]) {
    if (typeof mountId !== "string") continue;
    const held = now.has(mountId);
    if (held && !(was?.has(mountId) ?? false)) {
      since.set(mountId, { at: record.at, seq: record.seq });
    }
    if (!held) since.delete(mountId);
  }
}

function mountHolders(snapshot: AnyMachineSnapshot, since: Since): MountHolder[] {
  const holders = [...(mountsOf(snapshot)?.entries() ?? [])].map(([mountId, count]) => {
    const from = since.get(mountId);
    return { mountId, count, since: from?.at ?? 0, seq: from?.seq ?? 0 };
  });
  return holders.sort((a, b) => a.seq - b.seq);
}
