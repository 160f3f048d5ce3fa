// The engine's actors in and out in bulk: what a snapshot captures (every live actor, or only
// those that changed), and the fold of a store held in memory at creation.
import type { AnyMachineSnapshot } from "xstate";
import type { EventStore } from "../log/store.ts";
import { type Actor, isLive } from "./_actor.ts";
import type { ActorTable } from "./_actor_table.ts";
import { replay } from "./replay.ts";

/**
 * What a snapshot keeps, taken in one synchronous moment right after record `seq`: every live
 * actor (`full`), or those that recorded an event since the last capture and the ids of those
 * gone since.
 */
export type Capture = {
  seq: number;
  full: boolean;
  actors: [string, AnyMachineSnapshot][];
  removed: string[];
};

/**
 * The live actors for a snapshot at `seq`: all of them when `wantFull(size)`, else a delta of the
 * actors in `since` (those that recorded an event), looked at alone however many others there are.
 */
export function captureActors(
  actors: ActorTable<Actor>,
  since: ReadonlySet<string>,
  seq: number,
  wantFull: (actorCount: number) => boolean,
): Capture {
  const out: [string, AnyMachineSnapshot][] = [];
  if (wantFull(actors.size)) {
    for (const actor of actors.values()) {
      if (isLive(actor)) out.push([actor.id, actor.snapshot]);
    }
    return { seq, full: true, actors: out, removed: [] };
  }
  const removed: string[] = [];
  for (const id of since) {
    const actor = actors.get(id);
    if (actor && isLive(actor)) out.push([id, actor.snapshot]);
    else removed.push(id);
  }
  return { seq, full: false, actors: out, removed };
}

/**
 * The store's records folded at once, for stores that hold them in memory (tests); a store that
 * streams its log (the file store) is replayed with replayInSlices and handed over as `actors`.
 */
export function replaySync(store: EventStore, warn: (message: string) => void) {
  if (store.lastSeq === 0) return new Map<string, AnyMachineSnapshot>();
  const records = store.records();
  if (!(Symbol.iterator in records)) {
    throw new Error("This store streams its log: replay it with replayInSlices and pass actors");
  }
  return replay(records, warn);
}
