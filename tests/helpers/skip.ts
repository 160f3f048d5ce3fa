// The one place a test decides to skip. Under CI (CI set to anything but "") nothing skips: a
// missing dockerd, root or tool fails there loudly. Elsewhere a skip always says why on stderr.

/** True when CI is set to any non-empty value (`true`, `1`, `yes`...). */
export function inCi(): boolean {
  return (Deno.env.get("CI") ?? "") !== "";
}

/** Why a test needing root cannot run here, or null. */
export function rootMissing(): string | null {
  return Deno.uid() === 0 ? null : "needs root";
}

/** Whether `command` is an executable file on PATH. */
export function onPath(command: string): boolean {
  return (Deno.env.get("PATH") ?? "").split(":").some((dir) => {
    try {
      return dir !== "" && Deno.statSync(`${dir}/${command}`).isFile;
    } catch {
      return false;
    }
  });
}

/**
 * The `ignore` value for `Deno.test`: false under CI or when nothing is missing; otherwise true,
 * with `ignoring "<name>": <why>` on stderr. `why` is the first reason that is not null.
 */
export function skipUnless(testName: string, ...reasons: (string | null)[]): boolean {
  if (inCi()) return false;
  const why = reasons.find((reason) => reason !== null);
  if (why === undefined) return false;
  Deno.stderr.writeSync(new TextEncoder().encode(`ignoring "${testName}": ${why}\n`));
  return true;
}
