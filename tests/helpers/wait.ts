// Waiting on a real process or on a condition, in tests: bounded, and saying what was awaited.

/** Whether process `pid` is alive: there, and not a zombie waiting for its parent. */
export function alive(pid: number): boolean {
  try {
    return !Deno.readTextFileSync(`/proc/${pid}/stat`).split(" ")[2]!.startsWith("Z");
  } catch {
    return false;
  }
}

/** Resolves once `check` says true (asked every 50 ms); throws naming `what` after `ms`. */
export async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  ms = 10_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`waited ${ms} ms for ${what}`);
}
