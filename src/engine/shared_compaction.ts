// Compaction of a log several nodes share (etcd): each actor's records are replaced by its
// snapshot once it has `everyEvents` of them, and a finished actor (a volume removed, a pool
// released) is dropped whole, so a start reads little however long the cluster has run and the
// log holds nothing of what is gone. The node that appended the record does it; a start also
// finishes what a node killed in between left. Compaction goes through the store's conditional
// write: when another node moved the actor meanwhile, nothing happens and nothing is lost.
import type { AnyMachineSnapshot } from "xstate";
import type { ActorSnapshot, SharedEventStore } from "../log/store.ts";
import type { Engine } from "./engine.ts";
import { splitActorId } from "./replay.ts";

/** Records of one actor after which its snapshot stands for them, unless --snapshot-every says. */
export const DEFAULT_SHARED_EVERY = 256;

export type SharedCompaction = {
  /** Records compacted or dropped so far (for tests and metrics). */
  readonly done: { snapshots: number; drops: number };
  /** Stops compacting and waits for the writes in flight. */
  stop(): Promise<void>;
};

/** The store's form of one actor's snapshot. */
export function actorSnapshot(id: string, snapshot: AnyMachineSnapshot): ActorSnapshot {
  const { kind } = splitActorId(id);
  return { id, state: snapshot.value, context: kind.persist(snapshot.context), v: kind.version };
}

/** After a compaction that lost a race, the next try waits this long, doubling up to the max. */
const RETRY_MS = 50;
const RETRY_MAX_MS = 5_000;

export function startSharedCompaction(options: {
  engine: Engine;
  store: SharedEventStore;
  /** An actor's records are compacted once it has this many after its snapshot. */
  everyEvents: number;
  /** The live actors after replay: any other actor the log holds at start is finished. */
  live: ReadonlySet<string>;
  warn: (message: string) => void;
}): SharedCompaction {
  const { engine, store, everyEvents, warn } = options;
  // Records after each live actor's snapshot; kept only for actors this node saw records of.
  const backlog = new Map<string, number>();
  // Actors whose compaction lost a race to another node's record, and their retry timers.
  const retries = new Map<string, ReturnType<typeof setTimeout>>();
  const inFlight = new Set<Promise<void>>();
  const done = { snapshots: 0, drops: 0 };
  let stopped = false;
  let lastWarning = 0;

  const track = (write: Promise<void>) => {
    inFlight.add(write);
    write.finally(() => inFlight.delete(write));
  };
  const failed = (actor: string) => (error: unknown) => {
    // Nothing is lost: the records stay, and a later record tries again.
    if (Date.now() - lastWarning < 60_000) return;
    lastWarning = Date.now();
    // One line: the store's own words, never a stack.
    const why = error instanceof Error ? error.message : String(error);
    warn(`Cannot compact ${actor} in the shared log: ${why}`);
  };

  /** Drops a finished actor at `version`, its last record. */
  const drop = (actor: string, version: number) => {
    if (stopped) return;
    track(
      store.compact(actor, version, null).then((dropped) => {
        if (dropped) done.drops++;
      }, failed(actor)),
    );
  };

  /** Puts the actor's records into its snapshot, in its turn: no record of this node between. */
  const compact = (actor: string, wait: number) => {
    if (stopped) return;
    track(
      engine.inTurn(actor, async (live) => {
        // Finished meanwhile: its drop comes with its last record.
        if (live === null || live.version === 0) return "gone";
        const snapshot = actorSnapshot(actor, live.snapshot);
        return await store.compact(actor, live.version, snapshot) ? "compacted" : "lost";
      }).then((outcome) => {
        if (outcome === "compacted") done.snapshots++;
        if (outcome !== "lost") {
          retries.delete(actor);
          return;
        }
        // Another node appended or compacted first: try again once the actor is quiet.
        if (stopped) return;
        const next = Math.min(wait === 0 ? RETRY_MS : wait * 2, RETRY_MAX_MS);
        retries.set(actor, setTimeout(() => compact(actor, next), next));
      }, (error) => {
        // Counted afresh: the next try comes after as many records more.
        retries.delete(actor);
        failed(actor)(error);
      }),
    );
  };

  for (const [actor, records] of store.openBacklogs()) {
    if (!options.live.has(actor)) drop(actor, store.openVersion(actor));
    else if (records >= everyEvents) compact(actor, 0);
    else if (records > 0) backlog.set(actor, records);
  }

  const unobserve = engine.observe((record, snapshot, remote) => {
    const { actor } = record;
    if (snapshot.status === "done") {
      backlog.delete(actor);
      clearTimeout(retries.get(actor));
      retries.delete(actor);
      if (!remote) drop(actor, record.seq);
      return;
    }
    const records = (backlog.get(actor) ?? 0) + 1;
    if (remote || records < everyEvents || retries.has(actor)) {
      backlog.set(actor, records);
      return;
    }
    // Counted afresh whether it lands or not: a compaction that lost a race is retried on its
    // own timer, never once per record.
    backlog.set(actor, 0);
    compact(actor, 0);
  });

  return {
    done,
    async stop() {
      stopped = true;
      unobserve();
      for (const timer of retries.values()) clearTimeout(timer);
      retries.clear();
      await Promise.allSettled([...inFlight]);
    },
  };
}
