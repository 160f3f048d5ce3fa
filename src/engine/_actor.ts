// One actor of the engine as the engine holds it — its id taken apart once, its snapshot, its
// mailbox — and the small pure helpers around it: is it live, how its events are checked before
// they are logged, how its refusals and failures read.
import type { AnyMachineSnapshot } from "xstate";
import { type Intent, INTENT_PHRASES } from "../../machines/intents.ts";
import type { KindName, MachineKind } from "../../machines/mod.ts";
import type { EventFields } from "./effects.ts";
import { EngineError } from "./errors.ts";
import { initialSnapshot, splitActorId } from "./replay.ts";

export type Actor = {
  id: string;
  /** The id taken apart once, when the actor is made: `volume/db` → kind volume, name db. */
  kind: MachineKind;
  kindName: KindName;
  name: string;
  snapshot: AnyMachineSnapshot;
  /** The end of the mailbox: the command queued last settles this. */
  tail: Promise<unknown>;
  /** Durability of the actor's last recorded event; the snapshot is not told before it. */
  durable: Promise<void>;
  /** The snapshot as of the actor's last event on disk (what a stalled disk still lets show). */
  settled: AnyMachineSnapshot;
  /** The failed append this actor last stepped back from (every record of a batch shares it). */
  failedWith: Error | null;
  /** Commands queued or running in its mailbox. */
  queued: number;
};

export const DONE: Promise<void> = Promise.resolve();

/**
 * The event as its kind's schema parses it (unknown fields dropped), or what is wrong with it:
 * nothing reaches the log that replay would refuse (DESIGN rule 6).
 */
export function checkEvent(
  kind: MachineKind,
  event: EventFields & { at: number },
): (EventFields & { at: number }) | string {
  const parsed = kind.event.safeParse(event);
  if (parsed.success) return parsed.data;
  return parsed.error.issues
    .map((issue) => `${issue.path.length ? `${issue.path.join(".")}: ` : ""}${issue.message}`)
    .join("; ");
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

/** Neither unborn nor finished: what replay of the log would hold. */
export function isLive(actor: Actor, snapshot = actor.snapshot): boolean {
  return String(snapshot.value) !== actor.kind.machine.config.initial && snapshot.status !== "done";
}

/** True while the actor is in its machine's initial state: no event of it was ever accepted. */
export function isUnborn(actor: Actor): boolean {
  return String(actor.snapshot.value) === actor.kind.machine.config.initial;
}

export function newActor(id: string, snapshot: AnyMachineSnapshot = initialSnapshot(id)): Actor {
  const { kind, kindName, name } = splitActorId(id);
  return {
    id,
    kind,
    kindName: kindName as KindName,
    name,
    snapshot,
    settled: snapshot,
    tail: DONE,
    durable: DONE,
    failedWith: null,
    queued: 0,
  };
}

export function explainFailure(actor: Actor, intent: Intent, outcome: EventFields): string {
  const shown = actor.kindName === "volume" ? actor.name : actor.name.slice(0, 12);
  return `Cannot ${INTENT_PHRASES[intent.type]} "${shown}": ${String(outcome.reason)}`;
}

export function capitalize(actorId: string): string {
  const { kindName, name } = splitActorId(actorId);
  return `${kindName[0]!.toUpperCase()}${kindName.slice(1)} "${name}"`;
}

export function describe(error: unknown): string {
  if (error instanceof EngineError) return error.message;
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}
