// Helpers for crash tests of the network driver: a Berth child inside a test network namespace,
// a request sent without waiting for its answer, an `ip` shim that parks Berth inside an effect,
// and readers for links and for the log. Imports nothing of src/.
import { join } from "node:path";
import { spawnBerth } from "./berth_process.ts";

const ENCODER = new TextEncoder();

/** The real `ip` binary: the child is spawned through it, never through the shim. */
export const REAL_IP = findOnPath("ip");

function findOnPath(name: string): string {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":")) {
    try {
      if (Deno.statSync(join(dir, name)).isFile) return join(dir, name);
    } catch {
      // not in this directory
    }
  }
  return name;
}

export type BerthChild = {
  pid: number;
  stderr(): string;
  /** Resolves once the socket accepts connections and the pid is deno inside `ns`. */
  ready(): Promise<void>;
  kill(signal: Deno.Signal): void;
  exited(): Promise<Deno.CommandStatus>;
} & AsyncDisposable;

/**
 * Starts `main.ts serve` inside netns `ns` (through the real `ip`, never the shim). ready() also
 * checks that the pid is deno's own in `ns`, so that SIGKILL hits Berth and not a wrapper.
 */
export function spawnInNetns(
  ns: string,
  options: { socket: string; stateDir: string; env?: Record<string, string> },
): BerthChild {
  const args = ["serve", "--socket", options.socket, "--state-dir", options.stateDir];
  const berth = spawnBerth(args, options.env ?? {}, { netns: ns, ip: REAL_IP });
  const pid = berth.child.pid;
  return {
    pid,
    stderr: berth.stderr,
    async ready() {
      await berth.ready();
      const exe = await Deno.readLink(`/proc/${pid}/exe`);
      if (exe !== await Deno.realPath(Deno.execPath())) {
        throw new Error(`pid ${pid} is ${exe}, not deno: SIGKILL would miss Berth`);
      }
      const identify = await new Deno.Command(REAL_IP, {
        args: ["netns", "identify", String(pid)],
      }).output();
      const where = new TextDecoder().decode(identify.stdout).trim();
      if (where !== ns) throw new Error(`pid ${pid} runs in netns "${where}", not "${ns}"`);
    },
    kill: berth.kill,
    exited: berth.exited,
    [Symbol.asyncDispose]: () => berth[Symbol.asyncDispose](),
  };
}

/** Writes one plugin request as dockerd would and returns at once; the caller closes the conn. */
export async function sendOnly(socket: string, method: string, body: unknown) {
  const conn = await Deno.connect({ transport: "unix", path: socket });
  const payload = ENCODER.encode(`${JSON.stringify(body)}\n`);
  const head = ENCODER.encode(
    `POST /${method} HTTP/1.1\r\nHost: plugin\r\n` +
      `Accept: application/vnd.docker.plugins.v1.2+json\r\n` +
      `Content-Length: ${payload.length}\r\n\r\n`,
  );
  const bytes = new Uint8Array([...head, ...payload]);
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
  return conn;
}

/** Polls `check` every 2 ms until it is true; throws after `timeoutMs`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!await check()) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/**
 * An `ip` wrapper for Berth's PATH. The first command whose arguments contain CRASH_PAUSE parks:
 * it writes CRASH_MARK and waits until the test removes it (at most 10 s), then writes MARK.done.
 * With CRASH_WHEN=before it parks before running the real ip and then exits without running it
 * (Berth is dead by then: the effect never started); otherwise it parks after the real ip ran.
 */
export async function writeIpShim(dir: string): Promise<string> {
  const bin = join(dir, "bin");
  await Deno.mkdir(bin, { recursive: true });
  await Deno.writeTextFile(
    join(bin, "ip"),
    `#!/bin/sh
matches() {
  [ -n "$CRASH_PAUSE" ] && [ ! -e "$CRASH_MARK.done" ] || return 1
  case " $* " in *"$CRASH_PAUSE"*) return 0 ;; *) return 1 ;; esac
}
park() {
  echo $$ > "$CRASH_MARK"
  n=0
  while [ -e "$CRASH_MARK" ] && [ $n -lt 1000 ]; do sleep 0.01; n=$((n + 1)); done
  : > "$CRASH_MARK.done"
}
if [ "$CRASH_WHEN" = before ] && matches "$@"; then park; exit 1; fi
${REAL_IP} "$@"
rc=$?
if [ "$CRASH_WHEN" != before ] && matches "$@"; then park; fi
exit $rc
`,
    { mode: 0o755 },
  );
  return bin;
}

/** A link as the crash checks need it. `away` is true for a veth whose peer left this netns. */
export type LinkState = {
  name: string;
  kind: string;
  up: boolean;
  master: string | null;
  addresses: string[];
  away: boolean;
};

/** Every link of namespace `ns`, with its addresses. */
export async function linkStates(ns: string): Promise<LinkState[]> {
  const output = await new Deno.Command(REAL_IP, {
    args: ["-n", ns, "-json", "-details", "addr", "show"],
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(output.success ? output.stdout : output.stderr);
  if (!output.success) throw new Error(`ip -n ${ns} addr show: ${text}`);
  const list = JSON.parse(text) as {
    ifname: string;
    flags: string[];
    master?: string;
    link_netnsid?: number;
    linkinfo?: { info_kind?: string };
    addr_info?: { local: string; prefixlen: number }[];
  }[];
  return list.map((link) => ({
    name: link.ifname,
    kind: link.linkinfo?.info_kind ?? "",
    up: link.flags.includes("UP"),
    master: link.master ?? null,
    addresses: (link.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`),
    away: link.link_netnsid !== undefined,
  }));
}

/** Size in bytes of every log segment together: grows as soon as a record is written. */
export function logSize(stateDir: string): number {
  let total = 0;
  try {
    for (const entry of Deno.readDirSync(join(stateDir, "log"))) {
      if (entry.name.endsWith(".log")) {
        total += Deno.statSync(join(stateDir, "log", entry.name)).size;
      }
    }
  } catch {
    // no log directory yet
  }
  return total;
}

/** True when `path` exists. */
export function fileExists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The log as one line per record, 64-hex ids cut to 12: the last `before` records written before
 * byte `offset` (where a SIGKILL landed), a marker line, then every record after it.
 */
export async function logAround(stateDir: string, offset: number, before = 5): Promise<string> {
  const dir = join(stateDir, "log");
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".log"));
  const earlier: string[] = [];
  const later: string[] = [];
  let at = 0;
  for (const name of names.sort()) {
    for (const line of (await Deno.readTextFile(join(dir, name))).split("\n")) {
      if (line === "") continue;
      (at < offset ? earlier : later).push(describeRecord(line));
      at += ENCODER.encode(line).length + 1;
    }
  }
  return [...earlier.slice(-before), "  -- SIGKILL --", ...later].join("\n");
}

function describeRecord(line: string): string {
  const { seq, actor, type, data } = JSON.parse(line) as Record<string, unknown>;
  const text = `  #${seq} ${actor} ${type} ${JSON.stringify(data)}`;
  return text.replace(/([0-9a-f]{12})[0-9a-f]{52}/g, "$1…");
}
