// Berth as a real child process (deno run main.ts), for tests that kill it and start it again.

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/**
 * Unless a test asks for an admin endpoint, none: the default /run/berth/berth.sock is one per
 * host, and tests run many Berths side by side.
 */
function withAdminOff(args: string[], env: Record<string, string>): Record<string, string> {
  return args.includes("--admin") || "BERTH_ADMIN" in env ? env : { BERTH_ADMIN: "off", ...env };
}

export type BerthProcess = {
  child: Deno.ChildProcess;
  /** Everything the child wrote to stderr so far. */
  stderr(): string;
  /** Resolves once the socket accepts a connection (a stale file left by a kill does not). */
  ready(socket?: string, timeoutMs?: number): Promise<void>;
  kill(signal: Deno.Signal): void;
  /** Resolves with the exit status once the child ended and its stderr is read. */
  exited(): Promise<Deno.CommandStatus>;
} & AsyncDisposable;

/**
 * Starts `main.ts` with `args`; disposing SIGKILLs it if still running. With `netns` it runs as
 * `<ip> netns exec <netns> deno run …`: ip execs, so the child's pid is still deno's own. With
 * `openFiles`, `prlimit` (which execs too) sets the open-file limit, soft and hard.
 */
export function spawnBerth(
  args: string[],
  env: Record<string, string> = {},
  options: { netns?: string; ip?: string; openFiles?: number } = {},
): BerthProcess {
  const limit = options.openFiles;
  const deno = [
    ...(limit === undefined ? [] : ["prlimit", `--nofile=${limit}:${limit}`, "--"]),
    Deno.execPath(),
    "run",
    "--allow-all",
    MAIN,
    ...args,
  ];
  const [command, ...commandArgs] = options.netns === undefined
    ? deno
    : [options.ip ?? "ip", "netns", "exec", options.netns, ...deno];
  const child = new Deno.Command(command!, {
    args: commandArgs,
    env: withAdminOff(args, env),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const reading = (async () => {
    for await (const chunk of child.stderr) text += decoder.decode(chunk, { stream: true });
  })();
  const stdout = child.stdout.cancel();
  let status: Promise<Deno.CommandStatus> | null = null;
  const exited = () => status ??= Promise.all([child.status, reading, stdout]).then(([s]) => s);
  let done = false;
  exited().then(() => done = true);
  const socketOf = () => {
    const index = args.indexOf("--socket");
    return index === -1 ? undefined : args[index + 1];
  };
  return {
    child,
    stderr: () => text,
    async ready(socket = socketOf(), timeoutMs = 20_000) {
      if (!socket) throw new Error("ready() needs --socket in the args or a socket path");
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (done) throw new Error(`Berth exited before it was ready:\n${text}`);
        try {
          (await Deno.connect({ transport: "unix", path: socket })).close();
          return;
        } catch {
          // not there yet, or a stale file from a killed process
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      throw new Error(`Berth was not ready within ${timeoutMs} ms:\n${text}`);
    },
    kill(signal) {
      if (!done) child.kill(signal);
    },
    exited,
    async [Symbol.asyncDispose]() {
      if (!done) child.kill("SIGKILL");
      await exited();
    },
  };
}

/** Runs `main.ts` with `args` to completion. */
export async function runBerth(args: string[], env: Record<string, string> = {}) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    env: withAdminOff(args, env),
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}
