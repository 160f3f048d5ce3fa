// One full garbage collection, on demand. A start leaves a large heap of garbage behind (the log
// and snapshot it read, the objects replay made and dropped), and V8 keeps the pages it grew for
// it; a full collection once the start is done gives most of them back to the system. V8 offers
// gc() only with --expose-gc: the flag is set here at run time and gc() taken from a fresh
// context, as Node allows; where that fails, nothing happens.
import v8 from "node:v8";
import vm from "node:vm";

let gc: (() => void) | null | undefined;

/** Runs a full collection; false when this runtime does not allow one. */
export function collectGarbage(): boolean {
  if (gc === undefined) {
    try {
      v8.setFlagsFromString("--expose-gc");
      const found: unknown = vm.runInNewContext("gc");
      gc = typeof found === "function" ? found as () => void : null;
    } catch {
      gc = null;
    }
  }
  if (gc === null) return false;
  gc();
  return true;
}

/** How often Berth looks whether a busy spell just ended. */
const IDLE_CHECK_MS = 5000;

/**
 * After a busy spell (`activity` moved), once a whole check interval passes without it moving,
 * `collect` runs once: the garbage of a burst is given back rather than kept as resident pages
 * until the next one. Returns the function that stops it.
 */
export function collectWhenIdle(
  activity: () => number,
  options: { busy?: boolean; collect?: () => unknown; everyMs?: number } = {},
): () => void {
  const collect = options.collect ?? collectGarbage;
  let seen = activity();
  // Busy from the start: the first lull collects (after Berth's own start).
  let busy = options.busy ?? false;
  const timer = setInterval(() => {
    const now = activity();
    if (now !== seen) {
      seen = now;
      busy = true;
    } else if (busy) {
      busy = false;
      collect();
    }
  }, options.everyMs ?? IDLE_CHECK_MS);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}
