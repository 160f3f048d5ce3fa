// On a log several nodes share: how many records of each actor this node has applied (an
// append names that count, and the log refuses it when another node appended first), and who
// waits for the count to reach a version. Kept by actor id, not on the actor: an actor that is
// forgotten (released, or never born here) and made again must still name the log's count.

type Waiter = { version: number; resolve: () => void };

export type ActorVersions = {
  /** The actor's version as this node has applied it. */
  of(actorId: string): number;
  /** One more record of the actor applied here; wakes whoever waited for that version. */
  applied(actorId: string): void;
  /** Resolves once the actor's records up to `version` are applied here. */
  whenApplied(actorId: string, version: number): Promise<void>;
};

/** Versions starting from `openVersion`, the store's count at open. */
export function createActorVersions(openVersion: (actorId: string) => number): ActorVersions {
  const versions = new Map<string, number>();
  const waiters = new Map<string, Waiter[]>();
  const of = (actorId: string) => versions.get(actorId) ?? openVersion(actorId);
  return {
    of,
    applied(actorId) {
      const version = of(actorId) + 1;
      versions.set(actorId, version);
      const waiting = waiters.get(actorId);
      if (!waiting) return;
      const rest = waiting.filter((waiter) => waiter.version > version);
      if (rest.length > 0) waiters.set(actorId, rest);
      else waiters.delete(actorId);
      for (const waiter of waiting) if (waiter.version <= version) waiter.resolve();
    },
    whenApplied(actorId, version) {
      if (of(actorId) >= version) return Promise.resolve();
      const waiter = Promise.withResolvers<void>();
      waiters.set(actorId, [...(waiters.get(actorId) ?? []), { version, resolve: waiter.resolve }]);
      return waiter.promise;
    },
  };
}
