// The host side of go-plugin for Berth's volume backends: launch a backend with the cookie and
// the versions Berth speaks, read and check its handshake line, connect, check its health, pass
// its stderr on under its name, and stop it (GRPCController/Shutdown, a grace period, SIGKILL).
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import { type Handshake, parseHandshake } from "../../transport/goplugin/handshake.ts";
import type { BackendSpec } from "./config.ts";

/** The cookie Berth sets for its backends; a backend's go-plugin HandshakeConfig names it. */
export const BACKEND_COOKIE = { key: "BERTH_BACKEND", value: "berth-volume-backend" } as const;

/** The app protocol versions of backend.proto that Berth speaks as a host. */
export const BACKEND_VERSIONS: readonly number[] = [1];

export type LaunchOptions = {
  /** How long the handshake line may take (go-plugin's default: a minute). */
  startTimeoutMs?: number;
  /** Each line the backend writes on stderr. */
  log: (backend: string, line: string) => void;
  versions?: readonly number[];
};

export type RunningBackend = {
  name: string;
  pid: number;
  handshake: Handshake;
  client: grpc.Client;
  /** Settles with the exit code when the process ends, whoever ended it. */
  exited: Promise<number>;
  /** Shutdown over gRPC, `graceMs` to exit, then SIGKILL; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
};

/** A backend that could not be started; the message names it and says why. */
export class BackendLaunchError extends Error {
  override name = "BackendLaunchError";
  constructor(backend: string, readonly reason: string) {
    super(`volume backend "${backend}": ${reason}`);
  }
}

/** setpriv's path when this machine has it (Linux with util-linux), else null. */
const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((path) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}) ?? null;

const raw = (value: Uint8Array) => Buffer.from(value);
const bytes = (value: Buffer) => new Uint8Array(value);

/** Launches backend `name` and resolves once it answers its health check. */
export async function launchBackend(
  name: string,
  spec: BackendSpec,
  options: LaunchOptions,
): Promise<RunningBackend> {
  const versions = options.versions ?? BACKEND_VERSIONS;
  const fail = (why: string) => new BackendLaunchError(name, why);
  if (!runnable(spec.command[0]!)) {
    throw fail(`cannot run ${spec.command[0]}: no such program (or not executable)`);
  }
  // setpriv (util-linux) execs the backend with PR_SET_PDEATHSIG: the kernel kills it when Berth
  // dies, SIGKILL included, so no backend outlives the Berth that launched it.
  const [program, ...args] = [
    ...(SETPRIV ? [SETPRIV, "--pdeathsig", "KILL", "--"] : []),
    ...spec.command,
  ];
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program!, {
      args,
      env: {
        ...spec.env,
        [BACKEND_COOKIE.key]: BACKEND_COOKIE.value,
        PLUGIN_PROTOCOL_VERSIONS: versions.join(","),
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    throw fail(`cannot run ${spec.command[0]}: ${(error as Error).message}`);
  }
  const exited = child.status.then((status) => status.code);
  forwardLines(child.stderr, (line) => options.log(name, line));
  const lines = readLines(child.stdout);
  const timeoutMs = options.startTimeoutMs ?? 60_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const first = await Promise.race([
    lines.next().then((next) => next.done ? null : next.value),
    exited.then(() => null),
    new Promise<"timeout">((resolve) => timer = setTimeout(() => resolve("timeout"), timeoutMs)),
  ]).finally(() => clearTimeout(timer));
  const kill = async () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // gone already
    }
    await exited;
  };
  if (first === "timeout") {
    await kill();
    throw fail(`no handshake line within ${timeoutMs / 1000} s`);
  }
  if (first === null) {
    const code = await Promise.race([exited, kill().then(() => null)]);
    throw fail(`exited before its handshake line` + (code === null ? "" : ` (exit ${code})`));
  }
  // The rest of stdout is read and dropped, as go-plugin hosts do, so the pipe never fills.
  (async () => {
    for await (const _line of { [Symbol.asyncIterator]: () => lines }) { /* dropped */ }
  })().catch(() => {});
  const handshake = parseHandshake(first, versions);
  if (typeof handshake === "string") {
    await kill();
    throw fail(handshake);
  }
  const target = handshake.network === "unix" ? `unix://${handshake.address}` : handshake.address;
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  const unary = (path: string, request: Uint8Array, deadlineMs: number) =>
    new Promise<Uint8Array>((resolve, reject) =>
      client.makeUnaryRequest(
        path,
        raw,
        bytes,
        request,
        { deadline: Date.now() + deadlineMs },
        (error, reply) => error ? reject(error) : resolve(reply!),
      )
    );
  const plugin = new TextEncoder().encode("plugin");
  try {
    await unary("/grpc.health.v1.Health/Check", new Uint8Array([0x0a, 6, ...plugin]), 5000);
  } catch (error) {
    client.close();
    await kill();
    throw fail(`no answer to its health check: ${(error as Error).message}`);
  }
  return {
    name,
    pid: child.pid,
    handshake,
    client,
    exited,
    async stop(graceMs = 2000) {
      await unary("/plugin.GRPCController/Shutdown", new Uint8Array(0), graceMs).catch(() => {});
      client.close();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stopped = await Promise.race([
        exited.then(() => true),
        new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), graceMs)),
      ]).finally(() => clearTimeout(timer));
      if (!stopped) await kill();
    },
  };
}

/** The lines of `stream`, as they come. */
async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    text += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = text.indexOf("\n")) !== -1) {
      yield text.slice(0, end);
      text = text.slice(end + 1);
    }
  }
  if (text !== "") yield text;
}

function forwardLines(stream: ReadableStream<Uint8Array>, each: (line: string) => void) {
  (async () => {
    for await (const line of readLines(stream)) if (line.trim() !== "") each(line);
  })().catch(() => {});
}

/** Whether `program` (a path, or a name on PATH) is an executable file. */
function runnable(program: string): boolean {
  const candidates = program.includes("/")
    ? [program]
    : (Deno.env.get("PATH") ?? "").split(":").filter((dir) => dir !== "").map((dir) =>
      `${dir}/${program}`
    );
  return candidates.some((path) => {
    try {
      const info = Deno.statSync(path);
      return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
    } catch {
      return false;
    }
  });
}
