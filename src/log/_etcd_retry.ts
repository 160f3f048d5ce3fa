// How the etcd client rides out a member's death within one bound. etcd3's defaults (3 tries at
// once, then a 5 s circuit breaker per member) turn a one-second leader election into five
// seconds of instant refusals; so: etcd3 tries each member once per round, in a shuffled order
// (never the same member twice in a row), with a short per-attempt deadline, and our own loop
// runs rounds with a backoff until the call's bound.
import { setTimeout as sleep } from "node:timers/promises";
import {
  circuitBreaker,
  ConsecutiveBreaker,
  ExponentialBackoff,
  handleWhen,
  isBrokenCircuitError,
  retry,
} from "cockatiel";
import { type IOptions, isRecoverableError } from "etcd3";
import { StoreUnavailableError } from "./etcd_errors.ts";

const MIN_ATTEMPT_MS = 100;

/** etcd3 fault handling to pair with `withRetry`: one round over `members`, a short breaker. */
export function faultHandling(members: number): NonNullable<IOptions["faultHandling"]> {
  return {
    // etcd3 hands its retries the same shuffled member sequence, so a round visits each once.
    global: retry(handleWhen(isRecoverableError), { maxAttempts: members - 1 }),
    // A member refusing three calls in a row is skipped for a second, so a dead or cut-off
    // member costs one failed attempt, not one per call.
    host: () =>
      circuitBreaker(handleWhen(isRecoverableError), {
        halfOpenAfter: 1_000,
        breaker: new ConsecutiveBreaker(3),
      }),
    // etcd3 types this as a backoff but uses it as a factory (next() per reconnect series).
    watchBackoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 1_000 }).next(),
  };
}

/** gRPC call options whose `deadline` is read anew by each attempt of a round. */
export type AttemptOptions = { readonly deadline: Date };

/**
 * Runs `call` until it succeeds, fails for a reason a retry cannot cure, or `timeoutMs` ran out
 * (then StoreUnavailableError naming `what`). An attempt gets a third of the bound, so a member
 * that swallows requests (cut off, frozen) leaves time for the others.
 */
export async function withRetry<T>(
  what: string,
  timeoutMs: number,
  call: (options: AttemptOptions) => Promise<T>,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let pauseMs = 25;
  // The first failure names the trouble; later ones are often "circuit breaker is open" or an
  // attempt that started with no time left.
  let cause: unknown = null;
  const options = {
    // a getter: etcd3 spreads these options into each attempt's, which reads it then
    get deadline() {
      return new Date(Math.min(end, Date.now() + timeoutMs / 3));
    },
  };
  for (;;) {
    try {
      return await call(options);
    } catch (error) {
      const retriable = error instanceof Error &&
        (isRecoverableError(error) || isBrokenCircuitError(error));
      if (!retriable) throw new Error(`${capitalize(what)}: ${firstLine(error)}`, { cause: error });
      if (cause === null || isBrokenCircuitError(cause)) cause = error;
      const pause = pauseMs * (0.5 + Math.random());
      // An attempt with a few milliseconds left would only fail with "deadline exceeded".
      if (end - Date.now() - pause < MIN_ATTEMPT_MS) {
        throw new StoreUnavailableError(`${what} within ${timeoutMs} ms`, cause);
      }
      await sleep(pause);
      pauseMs = Math.min(pauseMs * 2, 500);
    }
  }
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0]!;
}
