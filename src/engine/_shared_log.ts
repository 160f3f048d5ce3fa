// The engine's side of a log other nodes write too: their records step the local actors as replay
// does, in each actor's turn (no effect runs here: effects belong to the node that recorded the
// intent); each actor's version in the log is kept; a finished actor's drop resets it; and a
// command another node beat waits until this node has seen what beat it.
import type { AnyMachineSnapshot } from "xstate";
import type { AppendConflictError, LogRecord, SharedEventStore } from "../log/store.ts";
import { type Actor, DONE, isUnborn } from "./_actor.ts";
import { step as transition } from "./_transition.ts";
import { createActorVersions } from "./_versions.ts";
import { lean, recordEvent } from "./replay.ts";

/**
 * How long a command beaten by another node waits to see that node's record before it is decided
 * again all the same (the watch that brings it may be between members).
 */
const CONFLICT_WAIT_MS = 5_000;

/** What of the engine's mailboxes following the shared log needs. */
export type Mailboxes = {
  get(actorId: string): Actor | undefined;
  /** The actor, made (unborn) if there is none; throws for an id of no known kind. */
  getOrMake(actorId: string): Actor;
  enqueue<T>(actor: Actor, work: () => T | Promise<T>): Promise<T>;
  /** Another node's record moved the actor to `next`. */
  moved(actor: Actor, logged: LogRecord, next: AnyMachineSnapshot): void;
  forget(actor: Actor): void;
  /** Settles once the engine drains: nobody waits any longer. */
  draining: Promise<unknown>;
  warn(message: string): void;
};

export type SharedLog = {
  /** The actor's version in the log as this node has applied it: what its next append names. */
  versionOf(actorId: string): number;
  /** This node's own record `seq` of the actor is in the log. */
  appended(actorId: string, seq: number): void;
  /** Waits, within CONFLICT_WAIT_MS, until this node has seen what beat an append. */
  seenPast(conflict: AppendConflictError): Promise<void>;
};

/** An error's own words, one line: what the operator reads, never a stack. */
function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function followSharedLog(store: SharedEventStore, mailboxes: Mailboxes): SharedLog {
  const { warn } = mailboxes;
  const versions = createActorVersions((id) => store.openVersion(id));

  /** A record another node appended: the actor steps by it in its turn, with no effect run. */
  store.onRemote((logged, unreadable) => {
    const ignored = (why: string) => warn(`Ignored record ${logged.seq} of another node: ${why}`);
    let actor: Actor;
    try {
      actor = mailboxes.getOrMake(logged.actor);
    } catch (error) {
      return ignored(reason(error)); // not an actor id this Berth knows
    }
    mailboxes.enqueue(actor, () => {
      versions.applied(actor.id, logged.seq); // in the log: the actor's version all the same
      if (unreadable !== undefined) {
        ignored(unreadable);
        return DONE;
      }
      let event;
      try {
        event = recordEvent(logged);
      } catch (error) {
        ignored(reason(error));
        return DONE;
      }
      const stepped = transition(actor.kind.machine, actor.snapshot, event);
      if (stepped[0] === actor.snapshot) {
        ignored(`${logged.type} does not apply to ${actor.id}`);
      } else {
        mailboxes.moved(actor, logged, lean(actor.kind.machine, stepped[0]));
      }
      if (isUnborn(actor) || actor.snapshot.status === "done") mailboxes.forget(actor);
      return DONE;
    }).catch(() => {}); // only while draining: the next start replays it
  });

  /** A finished actor dropped from the log: in its turn, after its records, its version is 0. */
  store.onDropped((actorId, seq) => {
    const actor = mailboxes.get(actorId);
    if (!actor) return versions.dropped(actorId, seq);
    mailboxes.enqueue(actor, () => {
      versions.dropped(actorId, seq);
      return DONE;
    }).catch(() => versions.dropped(actorId, seq));
  });

  return {
    versionOf: versions.of,
    appended: versions.applied,
    async seenPast(conflict) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        versions.whenPast(conflict.actor, conflict.expected, conflict.version),
        mailboxes.draining,
        new Promise((resolve) => timer = setTimeout(resolve, CONFLICT_WAIT_MS)),
      ]).finally(() => clearTimeout(timer));
    },
  };
}
