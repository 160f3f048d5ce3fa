// Time travel over the log: every live actor as it stood right after a given record, by replaying
// the prefix (engine/replay.ts). Reads records only; never dispatches, never writes.
import type { AnyMachineSnapshot } from "xstate";
import { applyRecord, replayInSlices, splitActorId } from "../engine/replay.ts";
import type { LogRecord } from "../log/store.ts";
import type { RecordCheck } from "../log/verify.ts";
import { type ActorView, actorView, stateName } from "./view.ts";

/** The sequence number asked for lies past the end of the log. */
export class SequencePastEndError extends Error {
  override name = "SequencePastEndError";
}

type Records = Iterable<LogRecord> | AsyncIterable<LogRecord>;

/**
 * Every live actor right after record `seq` (or after the last record when `seq` is absent),
 * sorted by id, and the sequence number that is. Reads `records` only up to `seq`.
 */
export async function timeTravel(
  records: Records,
  seq?: number,
): Promise<{ seq: number; actors: ActorView[] }> {
  let last = 0;
  async function* upTo() {
    for await (const record of records) {
      if (seq !== undefined && record.seq > seq) return;
      last = record.seq;
      yield record;
    }
  }
  const actors = await replayInSlices(upTo());
  if (seq !== undefined && seq > last) {
    throw new SequencePastEndError(
      `Cannot show the state at sequence ${seq}: the log ends at sequence ${last}`,
    );
  }
  return { seq: seq ?? last, actors: sortedViews(actors) };
}

/** Every live actor as it stood right after record `seq`, sorted by id. */
export async function stateAt(records: Records, seq: number): Promise<ActorView[]> {
  return (await timeTravel(records, seq)).actors;
}

function sortedViews(actors: Map<string, AnyMachineSnapshot>): ActorView[] {
  const ids = [...actors.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return ids.map((id) => actorView(id, actors.get(id)!));
}

/**
 * For verifyLog: replays each record as the engine would at start, calling damage whatever
 * replay could not take — an unknown kind, a newer machine version, an event that does not fit
 * its schema or that does not change its actor.
 */
export function replayCheck(): RecordCheck {
  const actors = new Map<string, AnyMachineSnapshot>();
  return {
    check(record) {
      let before: string;
      try {
        const { kind, kindName } = splitActorId(record.actor);
        if (record.v > kind.version) {
          return `written by version ${record.v} of the ${kindName} machine; ` +
            `this Berth knows version ${kind.version}`;
        }
        const snapshot = actors.get(record.actor);
        before = snapshot ? stateName(snapshot) : String(kind.machine.config.initial);
        if (applyRecord(actors, record, () => {}) !== null) return null;
      } catch (error) {
        return error instanceof Error ? error.message : String(error);
      }
      return `${record.type} does not apply to ${record.actor} in state ${before}`;
    },
    liveActors: () => actors.size,
  };
}
