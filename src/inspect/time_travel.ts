// Time travel over the log: every live actor as it stood right after a given record, by replaying
// the prefix (engine/replay.ts). Reads records only; never dispatches, never writes.
import type { AnyMachineSnapshot } from "xstate";
import { applyRecord, replayInSlices, splitActorId } from "../engine/replay.ts";
import { loadReplayBase, type ReplayBase } from "../engine/snapshots.ts";
import { listSegments, readLog } from "../log/reader.ts";
import type { RecordCheck } from "../log/verify.ts";
import { type ActorView, actorView, stateName } from "./view.ts";

/** The sequence number asked for lies past the end of the log. */
export class SequencePastEndError extends Error {
  override name = "SequencePastEndError";
}

/**
 * Where a replay to sequence `at` (or to the end) starts: the newest good snapshot at or before
 * it, else the first record. Throws HistoryCompactedError when compaction removed what it needs.
 */
export async function travelBase(
  logDir: string,
  at: number | undefined,
  warn: (message: string) => void = () => {},
): Promise<ReplayBase> {
  const segments = await listSegments(logDir);
  const firstSeq = segments[0]?.firstSeq ?? 1;
  return await loadReplayBase(logDir, { firstSeq, lastSeq: Infinity }, warn, at);
}

/**
 * Every live actor right after record `seq` (or after the last record when `seq` is absent),
 * sorted by id, and the sequence number that is: the newest snapshot before it, and the log from
 * there to `seq`.
 */
export async function timeTravel(
  logDir: string,
  seq?: number,
): Promise<{ seq: number; actors: ActorView[] }> {
  const base = await travelBase(logDir, seq);
  let last = base.seq;
  async function* upTo() {
    const from = base.seq + 1;
    for await (const record of readLog(logDir, seq === undefined ? { from } : { from, to: seq })) {
      last = record.seq;
      yield record;
    }
  }
  const actors = await replayInSlices(upTo(), () => {}, base.actors);
  if (seq !== undefined && seq > last) {
    throw new SequencePastEndError(
      `Cannot show the state at sequence ${seq}: the log ends at sequence ${last}`,
    );
  }
  return { seq: seq ?? last, actors: sortedViews(actors) };
}

/** Every live actor as it stood right after record `seq`, sorted by id. */
export async function stateAt(logDir: string, seq: number): Promise<ActorView[]> {
  return (await timeTravel(logDir, seq)).actors;
}

function sortedViews(actors: Map<string, AnyMachineSnapshot>): ActorView[] {
  const ids = [...actors.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return ids.map((id) => actorView(id, actors.get(id)!));
}

/** A snapshot file as verify holds it: where it is and the actors it restores to. */
export type CheckedSnapshot = {
  path: string;
  seq: number;
  actors: Map<string, AnyMachineSnapshot>;
};

/**
 * For verifyLog: replays each record as the engine would at start, calling damage whatever
 * replay could not take — an unknown kind, a newer machine version, an event that does not fit
 * its schema or that does not change its actor. Starts from `base` when compaction removed the
 * start of the log (records up to it are only read), and checks that each snapshot in `compare`
 * holds exactly what the log replays to at its sequence number.
 */
export function replayCheck(
  base: CheckedSnapshot | null = null,
  compare: readonly CheckedSnapshot[] = [],
): RecordCheck {
  const actors = new Map<string, AnyMachineSnapshot>(base?.actors ?? []);
  const baseSeq = base?.seq ?? 0;
  const bySeq = new Map(compare.map((snapshot) => [snapshot.seq, snapshot]));
  return {
    check(record) {
      if (record.seq <= baseSeq) return null;
      let before: string;
      try {
        const { kind, kindName } = splitActorId(record.actor);
        if (record.v > kind.version) {
          return `written by version ${record.v} of the ${kindName} machine; ` +
            `this Berth knows version ${kind.version}`;
        }
        const snapshot = actors.get(record.actor);
        before = snapshot ? stateName(snapshot) : String(kind.machine.config.initial);
        if (applyRecord(actors, record, () => {}) !== null) {
          const taken = bySeq.get(record.seq);
          return taken ? disagreement(taken, actors) : null;
        }
      } catch (error) {
        return error instanceof Error ? error.message : String(error);
      }
      return `${record.type} does not apply to ${record.actor} in state ${before}`;
    },
    liveActors: () => actors.size,
  };
}

/** Where a snapshot and the log's replay differ, or null when they hold the same actors. */
function disagreement(
  snapshot: CheckedSnapshot,
  replayed: ReadonlyMap<string, AnyMachineSnapshot>,
): string | null {
  const differ = (why: string) =>
    `snapshot ${snapshot.path} does not match the log at sequence ${snapshot.seq}: ${why}`;
  if (snapshot.actors.size !== replayed.size) {
    return differ(`${snapshot.actors.size} actors, the log has ${replayed.size}`);
  }
  for (const [id, mine] of snapshot.actors) {
    const theirs = replayed.get(id);
    if (!theirs) return differ(`${id} is not live in the log`);
    const { kind } = splitActorId(id);
    const same = JSON.stringify(mine.value) === JSON.stringify(theirs.value) &&
      canonical(kind.persist(mine.context)) === canonical(kind.persist(theirs.context));
    if (!same) return differ(`${id} differs`);
  }
  return null;
}

/**
 * JSON of a persisted context with its [key, value] pair lists sorted: a persistent map iterates
 * in an order that depends on its history (restored from a snapshot and then changed, or replayed
 * from the start), not only on what it holds.
 */
function canonical(persisted: unknown): string {
  return JSON.stringify(persisted, (_key, value: unknown) => {
    const pairs = Array.isArray(value) &&
      value.every((item) =>
        Array.isArray(item) && item.length === 2 && typeof item[0] === "string"
      );
    return pairs ? [...(value as [string, unknown][])].sort(([a], [b]) => (a < b ? -1 : 1)) : value;
  });
}
