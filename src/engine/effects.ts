// The engine's view of backends: checks before logging, effects for intents, host checks for
// reconcile. Backends stay ignorant of events; adapters such as volume_effects.ts translate.
import type { AnyMachineSnapshot } from "xstate";
import type { Intent } from "../../machines/intents.ts";

/** Event fields an adapter asks the engine to record (the engine adds `at`). */
export type EventFields = { type: string; [field: string]: unknown };

/**
 * `Host` is what the adapter looks at once per reconcile (a directory listing, the host's links):
 * reconcile then costs one look at the host in all, not one per actor.
 */
export interface Effects<Host = unknown, Snapshot = AnyMachineSnapshot> {
  /** Refuses, with InvalidRequestError, an event whose payload a backend cannot accept. */
  check(actorId: string, event: EventFields): void;
  /** Carries out an intent; resolves to the fields of `effect.succeeded`, throws on failure. */
  run(intent: Intent): Promise<Record<string, unknown>>;
  /** Looks at the host once, before the actors of this kind are reconciled. */
  survey(): Promise<Host>;
  /** After replay: the events that bring `snapshot` in line with what `host` shows. */
  reconcile(actorId: string, snapshot: Snapshot, host: Host): Promise<EventFields[]>;
}

/**
 * Thrown by `run` when nobody can say whether the effect happened (the backend's process died in
 * the middle of it). The engine records no outcome: the actor stays in flight, and once
 * `whenBack` resolves it is settled by `reconcile`, as after a restart of Berth.
 */
export class OutcomeUnknownError extends Error {
  override name = "OutcomeUnknownError";
  constructor(message: string, readonly whenBack: () => Promise<void>) {
    super(message);
  }
}

/** For kinds whose machines emit no intents (pools): nothing to check, run or reconcile. */
export const NO_EFFECTS: Effects = {
  check() {},
  run(intent) {
    return Promise.reject(new Error(`Nothing can carry out ${intent.type} here`));
  },
  survey() {
    return Promise.resolve(null);
  },
  reconcile() {
    return Promise.resolve([]);
  },
};
