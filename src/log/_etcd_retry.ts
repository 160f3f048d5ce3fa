// How the etcd client rides out a member's death within one bound: its own retry loop over
// etcd3's calls, because etcd3's default policies (3 tries at once, then a 5 s circuit breaker
// per member) turn a one-second leader election into five seconds of instant refusals.
import { setTimeout as sleep } from "node:timers/promises";
import {
  circuitBreaker,
  ConsecutiveBreaker,
  ExponentialBackoff,
  handleWhen,
  isBrokenCircuitError,
  noop,
} from "cockatiel";
import { type IOptions, isRecoverableError } from "etcd3";
import { StoreUnavailableError } from "./etcd_errors.ts";

const MIN_ATTEMPT_MS = 100;

/** etcd3 fault handling to pair with `withRetry`: no retry of its own, a short breaker. */
export function faultHandling(): NonNullable<IOptions["faultHandling"]> {
  return {
    global: noop,
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

/** gRPC call options of one attempt: `deadline` may be read once per attempt. */
export type AttemptOptions = { deadline: Date };

/**
 * Runs `call` until it succeeds, fails for a reason a retry cannot cure, or `timeoutMs` ran out
 * (then StoreUnavailableError naming `what`). An attempt gets half the bound, so a member that
 * swallows requests leaves time to try another; etcd3 picks a random member per attempt.
 */
export async function withRetry<T>(
  what: string,
  timeoutMs: number,
  call: (options: AttemptOptions) => Promise<T>,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let pauseMs = 25;
  // "the circuit breaker is open" says less than the error that opened it
  let cause: unknown = null;
  for (;;) {
    const deadline = new Date(Math.min(end, Date.now() + timeoutMs / 2));
    try {
      return await call({ deadline });
    } catch (error) {
      const retriable = error instanceof Error &&
        (isRecoverableError(error) || isBrokenCircuitError(error));
      if (!retriable) throw new Error(`${capitalize(what)}: ${firstLine(error)}`, { cause: error });
      if (cause === null || !isBrokenCircuitError(error)) cause = error;
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
