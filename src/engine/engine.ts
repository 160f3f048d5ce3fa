// The engine: one actor per entity, each with a mailbox so it runs one command at a time, and
// the intent → effect → outcome cycle of DESIGN.md. Reaches the log and backends only through
// the EventStore and Effects interfaces it is handed.
import type { AnyMachineSnapshot } from "xstate";
export { emittedIntents } from "./_actor.ts";
import type { Intent } from "../../machines/intents.ts";
import type { ActorId, KindName, SnapshotOfKind } from "../../machines/mod.ts";
import {
  AppendConflictError,
  AppendFailedError,
  AppendStalledError,
  type EventStore,
  isShared,
  type LogRecord,
} from "../log/store.ts";
import { type Effects, type EventFields, OutcomeUnknownError } from "./effects.ts";
import {
  EffectFailedError,
  IllegalStateError,
  InvalidRequestError,
  NotFoundError,
  UnavailableError,
} from "./errors.ts";
import {
  type Actor,
  capitalize,
  checkEvent,
  describe,
  DONE,
  emittedIntents,
  explainFailure,
  isLive,
  isUnborn,
  newActor,
} from "./_actor.ts";
import { createActorTable } from "./_actor_table.ts";
import { reconcileActors, type ReconcileReport } from "./_reconcile.ts";
import { type Capture, captureActors, replaySync } from "./_capture.ts";
import { step as transition } from "./_transition.ts";
import { followSharedLog } from "./_shared_log.ts";
import { initialSnapshot, lean } from "./replay.ts";

export type EngineOptions = {
  store: EventStore;
  effects: Partial<Record<KindName, Effects>>;
  /** Milliseconds since the epoch; the only clock events ever see. */
  clock?: () => number;
  warn?: (message: string) => void;
  /** Snapshots already replayed from `store` (replayInSlices); when absent, replay happens here. */
  actors?: Map<string, AnyMachineSnapshot>;
};

export type { Capture };

/**
 * Hears every recorded event once it is durable, with the snapshot it led to, in log order; on a
 * shared log, `remote` says another node recorded it.
 */
export type Observer = (record: LogRecord, snapshot: AnyMachineSnapshot, remote: boolean) => void;

/** An event, or how to choose it from the actor's snapshot when its turn comes. */
export type Decision<K extends KindName = KindName> =
  | EventFields
  | ((snapshot: SnapshotOfKind[K]) => EventFields | null);

/** What reconcile found and recorded, one line per repaired actor. */
export type { ReconcileReport };

export type Engine = {
  /**
   * Runs an event on actor `actorId` (created by a first event its machine accepts); resolves
   * once it is on disk. A function is called with the actor's snapshot in its turn, for decisions
   * that depend on it (the lowest free address).
   */
  dispatch<K extends KindName>(
    actorId: ActorId<K>,
    decision: Decision<K>,
  ): Promise<SnapshotOfKind[K]>;
  /** The actor's snapshot once the commands queued before this read are done. */
  read<K extends KindName>(actorId: ActorId<K>): Promise<SnapshotOfKind[K]>;
  /**
   * Current snapshots of every live actor of one kind, commands in flight or not. Some may stand
   * for events not yet on disk: to show them, wait for flush() first.
   */
  list<K extends KindName>(kind: K): [ActorId<K>, SnapshotOfKind[K]][];
  /**
   * While the disk is stalled (an append passed the store's timeout and is not written yet), the
   * snapshots of one kind as of their last event on disk; null when nothing is stalled, so that
   * a caller waits for flush() and shows the current ones instead.
   */
  settledWhileStalled<K extends KindName>(kind: K): [ActorId<K>, SnapshotOfKind[K]][] | null;
  /**
   * The live actors right after record `seq`, the last one appended, for a snapshot file: all of
   * them when `full(actorCount)` says so, else those changed since the last capture. Some of
   * those records may not be durable yet; a snapshot waits for store.flush().
   */
  capture(full: (actorCount: number) => boolean): Capture;
  /** Resolves once every event recorded so far is on disk (rejects if the log failed). */
  flush(): Promise<void>;
  /** Settles actors a crash left in flight and records drift between log and host. */
  reconcile(): Promise<ReconcileReport>;
  /**
   * Runs `work` in the actor's turn, with its snapshot and its version in a shared log (null when
   * the actor is not live, or the log is not shared): nothing moves the actor meanwhile but other
   * nodes. For compaction of a shared log.
   */
  inTurn<T>(
    actorId: string,
    work: (live: { snapshot: AnyMachineSnapshot; version: number } | null) => Promise<T>,
  ): Promise<T>;
  /** Refuses new commands and waits for those in flight. */
  drain(): Promise<void>;
  /**
   * Calls `observer` for each event from now on, once it is on disk; returns the unsubscribe
   * function. For read models (the inspector): an observer must not throw or dispatch.
   */
  observe(observer: Observer): () => void;
};

/** What one machine step gives: the next snapshot and the actions it would run. */
type Stepped = ReturnType<typeof transition>;

/** A decision as the engine runs it, whatever the kind. */
type AnyDecision = EventFields | ((snapshot: AnyMachineSnapshot) => EventFields | null);

/** What one command leaves: the new snapshot and when its last event is on disk. */
type Outcome = { snapshot: AnyMachineSnapshot; durable: Promise<void> };

/** How often an outcome the log refused (a full disk) is offered to it again. */
const OUTCOME_RETRY_MS = 500;

/** How many times a command is decided again after other nodes changed its actor first. */
const CONFLICT_RETRIES = 16;

/** How long commands for an actor whose outcome is unknown wait for its backend to be back. */
const SETTLE_WAIT_MS = 10_000;

/** An engine whose actors are rebuilt by replaying `store` (no effect runs during replay). */
export function createEngine(options: EngineOptions): Engine {
  const { store, effects } = options;
  const clock = options.clock ?? Date.now;
  const warn = options.warn ?? (() => {});
  const actors = createActorTable<Actor>();
  for (const [id, snapshot] of options.actors ?? replaySync(store, warn)) {
    actors.set(newActor(id, snapshot));
  }
  const observers = new Set<Observer>();
  // Ids of the actors that recorded an event since the last capture().
  let changed = new Set<string>();
  let draining = false;
  // Settles once drain() starts: what waits for a backend to come back stops waiting.
  const drainStarted = Promise.withResolvers<false>();
  let broken: Error | null = null;
  // Durability promises of records a stalled disk still holds, until it takes them: a read of
  // such an actor answers at once that the disk is stalled instead of waiting on it.
  const stalledWaits = new WeakMap<Promise<void>, AppendStalledError>();
  // How many stalled batches the disk has not taken yet: while any is, List shows what is on disk.
  let stalls = 0;
  // Commands queued or running, and who waits for them to reach zero (drain).
  let inFlight = 0;
  let idle: PromiseWithResolvers<void> | null = null;

  // A log other nodes write too: their records step the local actors in the store's order.
  const shared = isShared(store) ? store : null;
  const sharedLog = shared && followSharedLog(shared, {
    get: (actorId) => actors.get(actorId),
    getOrMake: actorFor,
    enqueue: (actor, work) => enqueue(actor, async () => await work()),
    moved(actor, logged, next) {
      actor.snapshot = next;
      actor.settled = next;
      changed.add(actor.id);
      if (observers.size > 0) tell(logged, next, true);
    },
    forget,
    draining: drainStarted.promise,
    warn,
  });

  function settle() {
    inFlight--;
    if (inFlight === 0 && idle) idle.resolve();
  }

  function effectsFor(actor: Actor): Effects {
    const adapter = effects[actor.kindName];
    if (!adapter) throw new Error(`No effects configured for ${actor.id}`);
    return adapter;
  }

  function enqueue<T>(actor: Actor, work: () => Promise<T>): Promise<T> {
    if (draining) return Promise.reject(new UnavailableError("Berth is shutting down"));
    const result = actor.tail.then(work, work);
    inFlight++;
    actor.queued++;
    const done = () => {
      settle();
      actor.queued--;
      // Kept while records of other nodes waited behind: forgotten once nothing is queued.
      if (actor.queued === 0 && (isUnborn(actor) || actor.snapshot.status === "done")) {
        forget(actor);
      }
    };
    // One settle handler per command: the mailbox's next link and the drain count in one go.
    actor.tail = result.then(done, done);
    return result;
  }

  /**
   * Steps the actor by `event` and appends it to the log without waiting for the disk: the
   * snapshot moves on at once so the next command in the mailbox can be decided, while callers
   * wait for `durable` before they answer. The log is in order, so once a later event is durable
   * every earlier one is too, and a crash loses only events nobody was told of.
   */
  function record(
    actor: Actor,
    event: EventFields & { at: number },
    stepped: Stepped = transition(actor.kind.machine, actor.snapshot, event),
  ) {
    if (broken) throw unavailable(broken);
    const { kind } = actor;
    const { type, at, ...data } = event;
    const next = lean(kind.machine, stepped[0]);
    const actions = stepped[1];
    const entry: Omit<LogRecord, "seq"> = { at, actor: actor.id, type, v: kind.version, data };
    const before = actor.snapshot;
    const beforeDurable = actor.durable;
    const appended = shared
      ? shared.appendAt(entry, sharedLog!.versionOf(actor.id))
      : store.append(entry);
    const durable = appended.then((logged) => {
      sharedLog?.appended(actor.id, logged.seq);
      // Appends resolve in log order: the last to resolve is the newest on disk.
      actor.settled = next;
      // Observers hear events in the order they were logged.
      if (observers.size > 0) tell(logged, next, false);
    }, (error) => {
      if (error instanceof AppendStalledError) {
        // Still queued: memory stays ahead of the log until the disk takes it, or the log fails.
        if (actor.durable === durable) actor.durable = stillStalled(error);
        throw unavailable(error);
      }
      if (error instanceof AppendFailedError) {
        // Not on disk and never will be (a full disk): memory steps back to what the log holds,
        // and the store takes appends again once it can.
        stepBack(actor, error, before, beforeDurable);
        throw unavailable(error);
      }
      // Memory may now be ahead of the log: refuse everything from here on.
      broken ??= error instanceof Error ? error : new Error(String(error));
      throw unavailable(broken);
    });
    durable.catch(() => {}); // awaited by the caller; marked handled for the pipelined case
    changed.add(actor.id);
    actor.snapshot = next;
    actor.durable = durable;
    return { intents: emittedIntents(actions), durable };
  }

  function tell(logged: LogRecord, snapshot: AnyMachineSnapshot, remote: boolean) {
    for (const observer of observers) {
      try {
        observer(logged, snapshot, remote);
      } catch (error) {
        // A read model's fault must never look like a failed append.
        warn(`An observer of the engine failed: ${describe(error)}`);
      }
    }
  }

  function stillStalled(error: AppendStalledError): Promise<void> {
    const written = error.written;
    if (!stalledWaits.has(written)) {
      stalledWaits.set(written, error);
      stalls++;
      written.then(() => {
        stalledWaits.delete(written);
        stalls--;
      }, (failed) => {
        stalledWaits.delete(written);
        stalls--;
        // Records the callers were told might still be written never were.
        broken ??= failed instanceof Error ? failed : new Error(String(failed));
      });
    }
    return written;
  }

  /**
   * Puts the actor back where it was before its first record that failed: the rest of that batch
   * failed with the same error, and each later record stood on this one.
   */
  function stepBack(
    actor: Actor,
    error: Error,
    before: AnyMachineSnapshot,
    beforeDurable: Promise<void>,
  ) {
    if (actor.failedWith === error) return;
    actor.failedWith = error;
    actor.snapshot = before;
    actor.durable = beforeDurable;
    if (isUnborn(actor)) forget(actor);
  }

  function unavailable(cause: Error) {
    const why = cause instanceof AppendFailedError || cause instanceof AppendStalledError
      ? cause.message
      : "the log failed; restart Berth";
    return new UnavailableError(`Cannot record events: ${why}`, { cause });
  }

  async function step(actor: Actor, fields: AnyDecision): Promise<Outcome> {
    try {
      return await decideAndAct(actor, fields);
    } finally {
      // An actor that never left its initial state (unknown name, refused first event) or that
      // reached its final state is not kept: the log alone remembers it.
      if (isUnborn(actor) || actor.snapshot.status === "done") forget(actor);
    }
  }

  async function decideAndAct(actor: Actor, decision: AnyDecision): Promise<Outcome> {
    const { kind } = actor;
    if (actor.snapshot.status === "done") actor.snapshot = initialSnapshot(actor.id);
    const fields = typeof decision === "function" ? decision(actor.snapshot) : decision;
    // null: the decision found nothing to do (a resent request already carried out).
    if (fields === null) return { snapshot: actor.snapshot, durable: actor.durable };
    const checked = checkEvent(kind, { ...fields, at: clock() });
    if (typeof checked === "string") {
      throw new InvalidRequestError(`Cannot record ${fields.type} of ${actor.id}: ${checked}`);
    }
    const event = checked;
    effectsFor(actor).check(actor.id, event);
    if (kind.isNoop(actor.snapshot, event)) {
      return { snapshot: actor.snapshot, durable: actor.durable };
    }
    // One evaluation of the machine's guards: the step itself says whether the event applies
    // (no enabled transition leaves the very same snapshot, as replay reads it too).
    const stepped = transition(kind.machine, actor.snapshot, event);
    if (stepped[0] === actor.snapshot) {
      if (isUnborn(actor)) throw new NotFoundError(`${capitalize(actor.id)} not found`);
      throw new IllegalStateError(kind.refusal(actor.snapshot, event));
    }
    actors.set(actor);
    const { intents, durable } = record(actor, event, stepped);
    // On a shared log the next command of this actor is decided only on what the log took:
    // another node may have changed it first, and a refused append steps this one back.
    if (shared) await durable;
    // No effect: free the mailbox now; the caller waits for the disk outside it.
    if (intents.length === 0) return { snapshot: actor.snapshot, durable };
    try {
      await durable; // an effect runs only once its intent is on disk
    } catch (error) {
      const cause = error instanceof UnavailableError ? error.cause : null;
      // Still queued for a stalled disk: the caller hears now that it may yet happen, and the
      // cycle ends once the intent lands, in the mailbox like any command.
      if (cause instanceof AppendStalledError) finishOnceWritten(actor, intents, cause.written);
      throw error;
    }
    let failure: string | null = null;
    for (const intent of intents) failure ??= await carryOut(actor, intent);
    if (failure !== null) throw new EffectFailedError(failure);
    return { snapshot: actor.snapshot, durable: DONE };
  }

  function finishOnceWritten(actor: Actor, intents: Intent[], written: Promise<void>) {
    written.then(() =>
      enqueue(actor, async () => {
        for (const intent of intents) await carryOut(actor, intent);
      })
    ).catch((error) => {
      warn(`Cannot finish ${actor.id} once the log reached the disk: ${describe(error)}`);
    });
  }

  /** Runs one intent's effect and records its outcome; returns the failure message, if any. */
  async function carryOut(actor: Actor, intent: Intent): Promise<string | null> {
    let outcome: EventFields;
    try {
      outcome = { type: "effect.succeeded", ...await effectsFor(actor).run(intent) };
    } catch (error) {
      if (error instanceof OutcomeUnknownError) {
        // Nothing to record: the actor stays in flight until the backend can say.
        settleOnceBack(actor, error.whenBack);
        const reason = explainFailure(actor, intent, { type: "", reason: error.message });
        throw new UnavailableError(reason);
      }
      if (!(error instanceof Error && error.name === "BackendError")) warn(describe(error));
      outcome = { type: "effect.failed", reason: error instanceof Error ? error.message : "?" };
    }
    const checked = checkEvent(actor.kind, { ...outcome, at: clock() });
    // An outcome the machine's schema refuses would stop the next start: logged as a failure.
    const event = typeof checked === "string"
      ? {
        type: "effect.failed",
        reason: `the backend's answer does not fit: ${checked}`,
        at: clock(),
      }
      : checked;
    await record(actor, event).durable.catch((error) => {
      // The effect ran but its outcome found no room (a full disk): the actor stepped back to its
      // intent; the outcome is recorded once the log takes it, never the effect run again.
      if (error instanceof UnavailableError && error.cause instanceof AppendFailedError) {
        recordLater(actor, event);
      }
      throw error;
    });
    return event.type === "effect.failed" ? explainFailure(actor, intent, event) : null;
  }

  /**
   * Settles an actor whose effect's outcome is unknown once its backend is back, by reconcile as
   * after a restart. Commands for it queue behind, up to SETTLE_WAIT_MS: most backends are back
   * in a moment; one that is not is waited for outside the mailbox.
   */
  function settleOnceBack(actor: Actor, whenBack: () => Promise<void>) {
    const settleNow = async () => {
      const effects = effectsFor(actor);
      const events = await effects.reconcile(actor.id, actor.snapshot, await effects.survey());
      await repairInTurn(actor, events, `Settling ${actor.id}`);
    };
    const failed = (error: unknown) => warn(`Cannot settle ${actor.id}: ${describe(error)}`);
    enqueue(actor, async () => {
      const back = whenBack().then(() => true);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const inTime = await Promise.race([
        back,
        drainStarted.promise,
        new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), SETTLE_WAIT_MS)),
      ]).finally(() => clearTimeout(timer));
      // Stopping: the next start's reconcile settles it.
      if (draining) return;
      if (inTime) return await settleNow();
      back.then(() => enqueue(actor, settleNow)).catch(failed);
    }).catch(failed);
  }

  /** Records repair `events` for `actor` in its turn, each through the usual cycle. */
  async function repairInTurn(actor: Actor, events: EventFields[], what: string) {
    const recorded: string[] = [];
    for (const event of events) {
      // Through the same cycle as any command: a repair (bridge lost) runs its effect.
      try {
        await (await step(actor, event)).durable;
        recorded.push(event.type);
      } catch (error) {
        if (error instanceof EffectFailedError) recorded.push(`${event.type} (failed)`);
        warn(`${what}: ${describe(error)}`);
      }
    }
    return recorded;
  }

  /** Tries again every OUTCOME_RETRY_MS, through the mailbox, until the log takes `event`. */
  function recordLater(actor: Actor, event: EventFields & { at: number }) {
    const again = () =>
      enqueue(actor, () => {
        const stepped = transition(actor.kind.machine, actor.snapshot, event);
        // Settled meanwhile (nothing else should move an actor in flight): nothing to record.
        if (stepped[0] === actor.snapshot) return DONE;
        return record(actor, event, stepped).durable;
      }).catch((error) => {
        // Stopping: the next start's reconcile settles the actor from the host.
        if (draining) return;
        if (error instanceof UnavailableError && error.cause instanceof AppendFailedError) {
          setTimeout(again, OUTCOME_RETRY_MS);
        } else warn(`Cannot record the outcome of ${actor.id}: ${describe(error)}`);
      });
    setTimeout(again, OUTCOME_RETRY_MS);
  }

  function forget(actor: Actor) {
    // Another command waits in its mailbox (another node's record): it stays until that ran.
    if (actor.queued > 1) return;
    if (actors.get(actor.id) === actor) actors.delete(actor.id);
  }

  function actorFor(actorId: string): Actor {
    let actor = actors.get(actorId);
    if (!actor) {
      // In the map at once, so that a second command for the same new name queues behind it.
      actor = newActor(actorId);
      actors.set(actor);
    }
    return actor;
  }

  return {
    // The one place where kinds meet the untyped actor table: an id's kind is its machine's, so
    // the snapshot of `volume/x` is a VolumeSnapshot.
    async dispatch<K extends KindName>(actorId: ActorId<K>, decision: Decision<K>) {
      for (let attempt = 1;; attempt++) {
        const actor = actorFor(actorId);
        try {
          const { snapshot, durable } = await enqueue(
            actor,
            () => step(actor, decision as AnyDecision),
          );
          await durable;
          return snapshot as SnapshotOfKind[K];
        } catch (error) {
          // Another node changed the actor first: decided again once its record is applied here.
          const conflict =
            error instanceof UnavailableError && error.cause instanceof AppendConflictError
              ? error.cause
              : null;
          if (!shared || !conflict || attempt >= CONFLICT_RETRIES) throw error;
          await sharedLog!.seenPast(conflict);
        }
      }
    },
    read<K extends KindName>(actorId: ActorId<K>): Promise<SnapshotOfKind[K]> {
      const actor = actors.get(actorId);
      if (!actor) return Promise.reject(new NotFoundError(`${capitalize(actorId)} not found`));
      return enqueue(actor, () => {
        if (actor.snapshot.status === "done" || isUnborn(actor)) {
          return Promise.reject(new NotFoundError(`${capitalize(actorId)} not found`));
        }
        // Never show a state whose last event is not on disk yet.
        const snapshot = actor.snapshot as SnapshotOfKind[K];
        const stalled = stalledWaits.get(actor.durable);
        if (stalled) return Promise.reject(unavailable(stalled));
        return actor.durable.then(() => snapshot);
      });
    },
    settledWhileStalled<K extends KindName>(kindName: K) {
      if (stalls === 0) return null;
      const out: [ActorId<K>, SnapshotOfKind[K]][] = [];
      for (const actor of actors.ofKind(kindName)) {
        const shown = actor.settled as SnapshotOfKind[K];
        if (isLive(actor, shown)) out.push([actor.id as ActorId<K>, shown]);
      }
      return out;
    },
    list<K extends KindName>(kindName: K) {
      const out: [ActorId<K>, SnapshotOfKind[K]][] = [];
      for (const actor of actors.ofKind(kindName)) {
        if (isLive(actor)) out.push([actor.id as ActorId<K>, actor.snapshot as SnapshotOfKind[K]]);
      }
      return out;
    },
    capture(wantFull) {
      // Synchronous: no event is recorded between reading lastSeq and the last snapshot.
      const since = changed;
      changed = new Set();
      return captureActors(actors, since, store.lastSeq, wantFull);
    },
    inTurn(actorId, work) {
      const actor = actors.get(actorId);
      if (!actor || !sharedLog) return work(null);
      return enqueue(actor, () => {
        const live = isLive(actor)
          ? { snapshot: actor.snapshot, version: sharedLog.versionOf(actorId) }
          : null;
        return work(live);
      });
    },
    reconcile() {
      // Reconcile runs at start, before the plugin socket opens: no command is queued.
      return reconcileActors([...actors.values()], {
        effectsFor,
        warn,
        repair: (actor, events) =>
          enqueue(actor, () => repairInTurn(actor, events, `Reconcile of ${actor.id}`)),
      });
    },
    flush() {
      if (broken) return Promise.reject(unavailable(broken));
      return store.flush().catch((error) => {
        throw unavailable(error instanceof Error ? error : new Error(String(error)));
      });
    },
    observe(observer) {
      observers.add(observer);
      return () => observers.delete(observer);
    },
    async drain() {
      draining = true;
      drainStarted.resolve(false);
      if (inFlight > 0) {
        idle ??= Promise.withResolvers<void>();
        await idle.promise;
      }
    },
  };
}
