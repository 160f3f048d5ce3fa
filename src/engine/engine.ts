// The engine: one actor per entity, each with a mailbox so it runs one command at a time, and
// the intent → effect → outcome cycle of DESIGN.md. Reaches the log and backends only through
// the EventStore and Effects interfaces it is handed.
import type { AnyMachineSnapshot } from "xstate";
import type { Intent } from "../../machines/intents.ts";
import type { KindName } from "../../machines/mod.ts";
import type { EventStore, LogRecord } from "../log/store.ts";
import type { Effects, EventFields } from "./effects.ts";
import {
  EffectFailedError,
  EngineError,
  IllegalStateError,
  NotFoundError,
  UnavailableError,
} from "./errors.ts";
import { step as transition } from "./_transition.ts";
import { initialSnapshot, replay, splitActorId } from "./replay.ts";

export type EngineOptions = {
  store: EventStore;
  effects: Partial<Record<KindName, Effects>>;
  /** Milliseconds since the epoch; the only clock events ever see. */
  clock?: () => number;
  warn?: (message: string) => void;
};

/** What reconcile found and recorded, one line per repaired actor. */
export type ReconcileReport = { actor: string; events: string[] }[];

export type Engine = {
  /** Runs `event` on actor `actorId` (created by a first event its machine accepts). */
  dispatch(actorId: string, event: EventFields): Promise<AnyMachineSnapshot>;
  /** The actor's snapshot once the commands queued before this read are done. */
  read(actorId: string): Promise<AnyMachineSnapshot>;
  /** Current snapshots of every live actor of one kind, commands in flight or not. */
  list(kind: KindName): [string, AnyMachineSnapshot][];
  /** Settles actors a crash left in flight and records drift between log and host. */
  reconcile(): Promise<ReconcileReport>;
  /** Refuses new commands and waits for those in flight. */
  drain(): Promise<void>;
};

type Actor = { id: string; snapshot: AnyMachineSnapshot; tail: Promise<unknown> };

/** An engine whose actors are rebuilt by replaying `store` (no effect runs during replay). */
export function createEngine(options: EngineOptions): Engine {
  const { store, effects } = options;
  const clock = options.clock ?? Date.now;
  const warn = options.warn ?? (() => {});
  const actors = new Map<string, Actor>();
  for (const [id, snapshot] of replay(store.records(), warn)) {
    actors.set(id, { id, snapshot, tail: Promise.resolve() });
  }
  let draining = false;
  const inFlight = new Set<Promise<unknown>>();

  function effectsFor(actorId: string): Effects {
    const adapter = effects[splitActorId(actorId).kindName as KindName];
    if (!adapter) throw new Error(`No effects configured for ${actorId}`);
    return adapter;
  }

  function enqueue<T>(actor: Actor, work: () => Promise<T>): Promise<T> {
    if (draining) return Promise.reject(new UnavailableError("Berth is shutting down"));
    const result = actor.tail.then(work, work);
    const settled = result.then(() => {}, () => {});
    actor.tail = settled;
    inFlight.add(settled);
    settled.finally(() => inFlight.delete(settled));
    return result;
  }

  async function record(actor: Actor, event: EventFields & { at: number }) {
    const { kind } = splitActorId(actor.id);
    const { type, at, ...data } = event;
    const [next, actions] = transition(kind.machine, actor.snapshot, event);
    const entry: Omit<LogRecord, "seq"> = { at, actor: actor.id, type, v: kind.version, data };
    try {
      await store.append(entry);
    } catch (error) {
      throw new UnavailableError(`Cannot record ${type} for ${actor.id}: the log failed`, {
        cause: error,
      });
    }
    actor.snapshot = next;
    return emittedIntents(actions);
  }

  async function step(actor: Actor, fields: EventFields): Promise<AnyMachineSnapshot> {
    try {
      return await decideAndAct(actor, fields);
    } finally {
      // An actor that never left its initial state (unknown name, refused first event) or that
      // reached its final state is not kept: the log alone remembers it.
      if (isUnborn(actor) || actor.snapshot.status === "done") forget(actor);
    }
  }

  async function decideAndAct(actor: Actor, fields: EventFields): Promise<AnyMachineSnapshot> {
    const { kind } = splitActorId(actor.id);
    const event = { ...fields, at: clock() };
    if (actor.snapshot.status === "done") actor.snapshot = initialSnapshot(actor.id);
    effectsFor(actor.id).check(actor.id, event);
    if (kind.isNoop(actor.snapshot, event)) return actor.snapshot;
    if (!actor.snapshot.can(event)) {
      if (isUnborn(actor)) throw new NotFoundError(`${capitalize(actor.id)} not found`);
      throw new IllegalStateError(kind.refusal(actor.snapshot, event));
    }
    actors.set(actor.id, actor);
    const intents = await record(actor, event);
    let failure: string | null = null;
    for (const intent of intents) failure ??= await carryOut(actor, intent);
    if (failure !== null) throw new EffectFailedError(failure);
    return actor.snapshot;
  }

  /** Runs one intent's effect and records its outcome; returns the failure message, if any. */
  async function carryOut(actor: Actor, intent: Intent): Promise<string | null> {
    let outcome: EventFields;
    try {
      outcome = { type: "effect.succeeded", ...await effectsFor(actor.id).run(intent) };
    } catch (error) {
      if (!(error instanceof Error && error.name === "BackendError")) warn(describe(error));
      outcome = { type: "effect.failed", reason: error instanceof Error ? error.message : "?" };
    }
    await record(actor, { ...outcome, at: clock() });
    return outcome.type === "effect.failed" ? explainFailure(actor, intent, outcome) : null;
  }

  function forget(actor: Actor) {
    if (actors.get(actor.id) === actor) actors.delete(actor.id);
  }

  function actorFor(actorId: string): Actor {
    let actor = actors.get(actorId);
    if (!actor) {
      // In the map at once, so that a second command for the same new name queues behind it.
      actor = { id: actorId, snapshot: initialSnapshot(actorId), tail: Promise.resolve() };
      actors.set(actorId, actor);
    }
    return actor;
  }

  return {
    dispatch(actorId, event) {
      const actor = actorFor(actorId);
      return enqueue(actor, () => step(actor, event));
    },
    read(actorId) {
      const actor = actors.get(actorId);
      if (!actor) return Promise.reject(new NotFoundError(`${capitalize(actorId)} not found`));
      return enqueue(actor, () => {
        if (actor.snapshot.status === "done" || isUnborn(actor)) {
          return Promise.reject(new NotFoundError(`${capitalize(actorId)} not found`));
        }
        return Promise.resolve(actor.snapshot);
      });
    },
    list(kindName) {
      const prefix = `${kindName}/`;
      const out: [string, AnyMachineSnapshot][] = [];
      for (const [id, actor] of actors) {
        if (id.startsWith(prefix) && !isUnborn(actor) && actor.snapshot.status !== "done") {
          out.push([id, actor.snapshot]);
        }
      }
      return out;
    },
    async reconcile() {
      const report: ReconcileReport = [];
      for (const actor of [...actors.values()]) {
        const found = await enqueue(actor, async () => {
          const events = await effectsFor(actor.id).reconcile(actor.id, actor.snapshot);
          for (const event of events) await record(actor, { ...event, at: clock() });
          if (actor.snapshot.status === "done") forget(actor);
          return events.map((event) => event.type);
        });
        if (found.length > 0) report.push({ actor: actor.id, events: found });
      }
      return report;
    },
    async drain() {
      draining = true;
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}

/**
 * The intents among a transition's actions. xstate returns emits as `xstate.emit` entries and
 * runs none of them (its typings omit that entry; tests/engine/engine_test.ts pins it).
 */
export function emittedIntents(actions: readonly { type: string }[]): Intent[] {
  const intents: Intent[] = [];
  for (const action of actions as readonly { type: string; params?: { event?: Intent } }[]) {
    if (action.type === "xstate.emit" && action.params?.event) intents.push(action.params.event);
  }
  return intents;
}

/** True while the actor is in its machine's initial state: no event of it was ever accepted. */
function isUnborn(actor: Actor): boolean {
  return String(actor.snapshot.value) === splitActorId(actor.id).kind.machine.config.initial;
}

function explainFailure(actor: Actor, intent: Intent, outcome: EventFields): string {
  const verb = intent.type.replace(/^intent\./, "");
  const { kindName, name } = splitActorId(actor.id);
  return `Cannot ${verb} ${kindName} "${name}": ${String(outcome.reason)}`;
}

function capitalize(actorId: string): string {
  const { kindName, name } = splitActorId(actorId);
  return `${kindName[0]!.toUpperCase()}${kindName.slice(1)} "${name}"`;
}

function describe(error: unknown): string {
  if (error instanceof EngineError) return error.message;
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}
