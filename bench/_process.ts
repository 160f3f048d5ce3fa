// Server child processes for the bench (Berth, the Go baseline): spawn, wait until the socket
// accepts a connection, stop with SIGTERM. Every child is tracked so the bench can kill exactly
// the processes it started, by PID, whatever happens.

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const STDERR_LIMIT = 1 << 20;

/** A server process we started. */
export type ServerProcess = {
  label: string;
  pid: number;
  socket: string;
  /** What the child wrote to stderr so far (the last MiB). */
  stderr(): string;
  /** Resolves with the milliseconds from spawn to the first accepted connection on the socket. */
  ready(timeoutMs?: number): Promise<number>;
  /** Resolves once stderr matches `pattern`; rejects if the child exits or `timeoutMs` passes. */
  waitForStderr(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** SIGTERM, then waits for the exit (SIGKILL after `graceMs`); resolves with the status. */
  stop(graceMs?: number): Promise<Deno.CommandStatus>;
  /** SIGKILL if still running; used by the cleanup path. */
  kill(): Promise<void>;
};

/** The children alive right now, so that cleanup kills exactly those. */
export type ProcessTracker = Set<ServerProcess>;

export type SpawnOptions = {
  label: string;
  command: string;
  args: string[];
  socket: string;
  env?: Record<string, string>;
};

/** Spawns a server that listens on `options.socket`; tracked in `tracker` until it exits. */
export function spawnServer(tracker: ProcessTracker, options: SpawnOptions): ServerProcess {
  const spawnedAt = performance.now();
  const child = new Deno.Command(options.command, {
    args: options.args,
    env: options.env ?? {},
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const reading = (async () => {
    for await (const chunk of child.stderr) {
      text += decoder.decode(chunk, { stream: true });
      if (text.length > STDERR_LIMIT) text = text.slice(-STDERR_LIMIT);
    }
  })();
  let running = true;
  const exited = Promise.all([child.status, reading]).then(([status]) => {
    running = false;
    tracker.delete(server);
    return status;
  });

  const server: ServerProcess = {
    label: options.label,
    pid: child.pid,
    socket: options.socket,
    stderr: () => text,
    async ready(timeoutMs = 60_000) {
      const deadline = spawnedAt + timeoutMs;
      while (performance.now() < deadline) {
        if (!running) throw new Error(`${options.label} exited before it was ready:\n${text}`);
        try {
          (await Deno.connect({ transport: "unix", path: options.socket })).close();
          return performance.now() - spawnedAt;
        } catch {
          // not listening yet
        }
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      throw new Error(`${options.label} was not ready within ${timeoutMs} ms:\n${text}`);
    },
    async waitForStderr(pattern, timeoutMs = 60_000) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const match = pattern.exec(text);
        if (match) return match;
        if (!running) throw new Error(`${options.label} exited; stderr never matched ${pattern}`);
        if (performance.now() > deadline) {
          throw new Error(`${options.label}: stderr did not match ${pattern}:\n${text}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    },
    async stop(graceMs = 30_000) {
      if (running) child.kill("SIGTERM");
      const timer = setTimeout(() => {
        if (running) child.kill("SIGKILL");
      }, graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
    async kill() {
      if (running) child.kill("SIGKILL");
      await exited;
    },
  };
  tracker.add(server);
  return server;
}

/** Extra `deno run` flags for the Berth child, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
export function berthDenoFlags(): string[] {
  return (Deno.env.get("BERTH_BENCH_DENO_FLAGS") ?? "").split(/\s+/).filter((flag) => flag !== "");
}

/**
 * Starts `deno run main.ts serve` on `socket` and `stateDir`. With `name`, Berth is started as
 * dockerd's legacy plugin `--name NAME`; `socket` must then be /run/docker/plugins/NAME.sock.
 */
export function spawnBerth(
  tracker: ProcessTracker,
  options: {
    socket: string;
    stateDir: string;
    label?: string;
    name?: string;
    admin?: string;
    /** More serve flags (--store etcd …). */
    extraArgs?: string[];
  },
): ServerProcess {
  const where = options.name === undefined
    ? ["--socket", options.socket]
    : ["--name", options.name];
  const args = [
    "run",
    ...berthDenoFlags(),
    "--allow-all",
    MAIN,
    "serve",
    ...where,
    "--state-dir",
    options.stateDir,
    // The inspector only when a workload asks for it: the default socket is one per host.
    "--admin",
    options.admin ?? "off",
    ...(options.extraArgs ?? []),
  ];
  return spawnServer(tracker, {
    label: options.label ?? "Berth",
    command: Deno.execPath(),
    args,
    socket: options.socket,
    env: { NO_COLOR: "1" },
  });
}

/** Kills every tracked child that is still running (SIGKILL, by its PID) and waits for it. */
export async function killAll(tracker: ProcessTracker) {
  await Promise.allSettled([...tracker].map((server) => server.kill()));
}
