// On a log several nodes share: each actor's version as this node has applied it, the sequence
// number of its last record (0 for none, or once the actor was dropped), which an append names
// and the log refuses when another node appended first; and who waits to have seen a version.
// Kept by actor id, not on the actor: an actor that is forgotten (released, or never born here)
// and made again must still name the log's version. A dropped actor's entry goes.

type Waiter = { expected: number; version: number; resolve: () => void };

/**
 * How many recent drops are remembered: a conflict is waited on a moment after the log refused
 * the append, and the actor may have been dropped in that moment, past the version waited for.
 */
const RECENT_DROPS = 1024;

export type ActorVersions = {
  /** The actor's version as this node has applied it. */
  of(actorId: string): number;
  /** The actor's record `seq` applied here; wakes whoever waited for it. */
  applied(actorId: string, seq: number): void;
  /** The actor was dropped from the log at `seq`: its version is 0 again. */
  dropped(actorId: string, seq: number): void;
  /**
   * Resolves once this node has applied the actor past `expected`, the version an append was
   * decided on, up to `version`, the one the log holds (0: the log dropped the actor).
   */
  whenPast(actorId: string, expected: number, version: number): Promise<void>;
};

/** Versions starting from `openVersion`, the store's version of an actor at open. */
export function createActorVersions(openVersion: (actorId: string) => number): ActorVersions {
  const versions = new Map<string, number>();
  const waiters = new Map<string, Waiter[]>();
  const recentDrops = new Map<string, number>();
  const of = (actorId: string) => versions.get(actorId) ?? openVersion(actorId);
  // Sequence numbers only grow: a record or a drop at `seq` is past every version up to it.
  const wake = (actorId: string, seq: number) => {
    const waiting = waiters.get(actorId);
    if (!waiting) return;
    const due = (waiter: Waiter) =>
      waiter.version === 0 ? seq > waiter.expected : seq >= waiter.version;
    const rest = waiting.filter((waiter) => !due(waiter));
    if (rest.length > 0) waiters.set(actorId, rest);
    else waiters.delete(actorId);
    for (const waiter of waiting) if (due(waiter)) waiter.resolve();
  };
  return {
    of,
    applied(actorId, seq) {
      versions.set(actorId, seq);
      wake(actorId, seq);
    },
    dropped(actorId, seq) {
      // The store forgets the actor's open version when it hears of the drop, before this.
      versions.delete(actorId);
      recentDrops.delete(actorId);
      recentDrops.set(actorId, seq);
      if (recentDrops.size > RECENT_DROPS) recentDrops.delete(recentDrops.keys().next().value!);
      wake(actorId, seq);
    },
    whenPast(actorId, expected, version) {
      // The furthest this node has seen of the actor: its last record, or a later drop.
      const seen = Math.max(of(actorId), recentDrops.get(actorId) ?? 0);
      if (version === 0 ? seen > expected : seen >= version) return Promise.resolve();
      const waiter = Promise.withResolvers<void>();
      const waiting = waiters.get(actorId) ?? [];
      waiters.set(actorId, [...waiting, { expected, version, resolve: waiter.resolve }]);
      return waiter.promise;
    },
  };
}
