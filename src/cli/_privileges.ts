// Berth makes bridges and veths (CAP_NET_ADMIN) and listens under /run/docker/plugins, which
// root owns: a start without those is refused at once, in one line, before anything is made.

/** CAP_NET_ADMIN's bit in the capability sets of /proc/PID/status. */
const CAP_NET_ADMIN = 12n;

/** What Berth needs, said the same way wherever a start is refused for want of it. */
export const NEEDS_ROOT =
  "Berth needs root (or CAP_NET_ADMIN and write access to /run/docker/plugins)";

/** Whether the effective set `capEff` (the hex of /proc/self/status's CapEff) has CAP_NET_ADMIN. */
export function hasNetAdmin(capEff: string): boolean {
  if (!/^[0-9a-f]{1,16}$/i.test(capEff)) return false;
  return ((BigInt(`0x${capEff}`) >> CAP_NET_ADMIN) & 1n) === 1n;
}

/** Why this process cannot run Berth, or null when it can. */
export function missingPrivileges(status = readStatus()): string | null {
  const capEff = /^CapEff:\s*(\S+)$/m.exec(status)?.[1];
  // Not Linux's /proc: nothing to judge by, so let the first real failure speak.
  if (capEff === undefined) return null;
  if (hasNetAdmin(capEff)) return null;
  const uid = /^Uid:\s*\d+\s+(\d+)/m.exec(status)?.[1] ?? "?";
  return `${NEEDS_ROOT}: this process (uid ${uid}) lacks CAP_NET_ADMIN`;
}

function readStatus(): string {
  try {
    return Deno.readTextFileSync("/proc/self/status");
  } catch {
    return "";
  }
}
