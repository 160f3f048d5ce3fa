// The inspector's read API: what the admin endpoint answers, as plain data. Live answers come
// from the live model; `at` (time travel) and history come from the log on disk, read-only.
import type { AnyMachineSnapshot } from "xstate";
import { type KindName, KINDS } from "../../machines/mod.ts";
import type { Engine } from "../engine/engine.ts";
import { replayInSlices } from "../engine/replay.ts";
import { HistoryCompactedError } from "../engine/snapshots.ts";
import { readLog } from "../log/reader.ts";
import type { LogRecord } from "../log/store.ts";
import { machineGraph } from "./graph.ts";
import { compactedHistory } from "./history.ts";
import { createLiveModel, type FeedBatch, type FeedRecord, feedRecord } from "./live.ts";
import { machineSvg } from "./svg.ts";
import { travelBase } from "./time_travel.ts";
import { type ActorView, actorView } from "./view.ts";

/** A sequence number past the end of the log, or otherwise not answerable. */
export class SequenceError extends Error {
  override name = "SequenceError";
}

export type ActorFilter = { kind?: KindName; state?: string; name?: string; at?: number };
export type LogQuery = {
  from?: number;
  to?: number;
  actor?: string;
  type?: string;
  limit?: number;
};

/** The order the inspector shows kinds in: what dockerd asks for first comes first. */
const KIND_NAMES: readonly KindName[] = ["volume", "network", "endpoint", "pool"];
const DEFAULT_LOG_LIMIT = 1000;
const MAX_LOG_LIMIT = 10_000;

export type InspectorApi = ReturnType<typeof createInspectorApi>;

export function createInspectorApi(options: { engine: Engine; lastSeq: number; logDir: string }) {
  const { logDir } = options;
  const live = createLiveModel(options.engine, options.lastSeq);
  // The last time-travel answer: stepping forward continues from it instead of starting over.
  let travelled: { seq: number; actors: Map<string, AnyMachineSnapshot> } | null = null;

  async function actorsAt(
    at: number | undefined,
  ): Promise<ReadonlyMap<string, AnyMachineSnapshot>> {
    if (at === undefined || at === live.lastSeq) return live.actors;
    checkSeq(at);
    if (travelled?.seq === at) return travelled.actors;
    // Forward from the last answer, else from the newest snapshot before `at`.
    const base = travelled && travelled.seq < at
      ? { seq: travelled.seq, actors: new Map(travelled.actors) }
      : await travelBase(logDir, at).catch((error) => {
        throw error instanceof HistoryCompactedError ? new SequenceError(error.message) : error;
      });
    const records = readLog(logDir, { from: base.seq + 1, to: at });
    const actors = await replayInSlices(records, () => {}, base.actors);
    travelled = { seq: at, actors };
    return actors;
  }

  function checkSeq(at: number) {
    if (at > live.lastSeq) {
      throw new SequenceError(`Sequence ${at} is past the last event (${live.lastSeq})`);
    }
  }

  function countsOf(actors: ReadonlyMap<string, AnyMachineSnapshot>) {
    const counts = new Map<string, Map<string, number>>();
    for (const kind of KIND_NAMES) {
      const states = Object.keys(KINDS[kind].machine.config.states ?? {});
      counts.set(kind, new Map(states.map((state) => [state, 0])));
    }
    for (const [id, snapshot] of actors) {
      const byState = counts.get(id.slice(0, id.indexOf("/")));
      const state = String(snapshot.value);
      byState?.set(state, (byState.get(state) ?? 0) + 1);
    }
    return counts;
  }

  return {
    lastSeq: () => live.lastSeq,
    countsByKind: () => countsOf(live.actors),
    subscribe: (listener: (batch: FeedBatch) => void) => live.subscribe(listener),
    /** What a new feed client needs first: where the log stands and every count. */
    hello() {
      return { lastSeq: live.lastSeq, counts: plainCounts(countsOf(live.actors)) };
    },
    async machines(at?: number) {
      const counts = countsOf(await actorsAt(at));
      return KIND_NAMES.map((kind) => ({
        kind,
        graph: machineGraph(kind),
        counts: Object.fromEntries(counts.get(kind) ?? []),
        svg: `/api/machines/${kind}.svg`,
      }));
    },
    machineSvg: (kind: KindName) => machineSvg(kind),
    async actors(
      filter: ActorFilter,
    ): Promise<{ lastSeq: number; at: number; actors: ActorView[] }> {
      const actors = await actorsAt(filter.at);
      const out: ActorView[] = [];
      for (const [id, snapshot] of actors) {
        const view = matches(id, snapshot, filter);
        if (view) out.push(view);
      }
      out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      return { lastSeq: live.lastSeq, at: filter.at ?? live.lastSeq, actors: out };
    },
    async actor(id: string, at?: number) {
      if (at !== undefined) checkSeq(at);
      const to = at ?? live.lastSeq;
      const history = await compactedHistory(logDir, id, to);
      return { lastSeq: live.lastSeq, at: to, ...history };
    },
    async log(query: LogQuery): Promise<{ records: FeedRecord[]; next: number | null }> {
      const limit = Math.min(query.limit ?? DEFAULT_LOG_LIMIT, MAX_LOG_LIMIT);
      const to = Math.min(query.to ?? live.lastSeq, live.lastSeq);
      const records: FeedRecord[] = [];
      let next: number | null = null;
      const source = readLog(logDir, { ...logFilter(query), to });
      for await (const record of source as AsyncIterable<LogRecord>) {
        if (records.length === limit) {
          next = record.seq;
          break;
        }
        records.push(feedRecord(record));
      }
      return { records, next };
    },
    close: () => live.close(),
  };
}

function logFilter(query: LogQuery) {
  return {
    ...(query.from === undefined ? {} : { from: query.from }),
    ...(query.actor === undefined ? {} : { actor: query.actor }),
    ...(query.type === undefined ? {} : { type: query.type }),
  };
}

function matches(id: string, snapshot: AnyMachineSnapshot, filter: ActorFilter): ActorView | null {
  if (filter.kind !== undefined && !id.startsWith(`${filter.kind}/`)) return null;
  if (filter.state !== undefined && String(snapshot.value) !== filter.state) return null;
  if (filter.name !== undefined && !id.slice(id.indexOf("/") + 1).includes(filter.name)) {
    return null;
  }
  return actorView(id, snapshot);
}

function plainCounts(counts: Map<string, Map<string, number>>) {
  return Object.fromEntries(
    [...counts].map(([kind, states]) => [kind, Object.fromEntries(states)]),
  );
}
