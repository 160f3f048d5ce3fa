// The two failures a caller of the etcd client tells apart: someone else appended first (retry
// on the new head), or etcd did not answer in time (nothing to retry on; say so). Imports nothing.

/** An append refused because the actor's head moved: another writer appended first. */
export class AppendConflictError extends Error {
  override name = "AppendConflictError";
  constructor(
    readonly actor: string,
    /** The head revision the append was decided on. */
    readonly expected: number,
    /** The head's revision now: the actor's last append (0 when it has none). */
    readonly current: number,
  ) {
    super(`Cannot append to "${actor}": expected its head at ${expected}, found ${current}`);
  }
}

/**
 * etcd did not answer within the client's bound: no quorum, every endpoint down or cut off. An
 * append rejected with it may still commit later (a proposal already in a leader's log).
 */
export class StoreUnavailableError extends Error {
  override name = "StoreUnavailableError";
  constructor(what: string, cause: unknown) {
    super(`Store unavailable: ${what}: ${reason(cause)}`, { cause });
  }
}

/** What etcd holds is not a log this Berth can read (an earlier layout, a snapshot it cannot use). */
export class SharedLogUnreadableError extends Error {
  override name = "SharedLogUnreadableError";
}

/** The first line of an etcd3 / gRPC error, without the library's report-this-bug suffix. */
function reason(cause: unknown): string {
  const message = cause instanceof Error ? cause.message : String(cause);
  // grpc-js ends an unreachable member's error with an empty "Resolution note: ".
  return message.split("\n")[0]!.replace(/ Please report this error at .*$/, "")
    .replace(/\.? Resolution note: *$/, "");
}
