// Berth's `plugin` command as a go-plugin host launches it: the child, its handshake line, and
// raw or typed unary gRPC calls on the socket it names.
import { Buffer } from "node:buffer";
import { join } from "node:path";
import {
  create,
  type DescMessage,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
export const COOKIE = { BERTH_PLUGIN: "berth-driver-engine" };

/**
 * Starts `berth plugin` on a state dir in `dir`, its socket there too, as a host would: with
 * `env` (the cookie, the versions); inside network namespace `netns` when given.
 */
export function launch(dir: string, env: Record<string, string>, netns?: string) {
  const deno = [
    Deno.execPath(),
    "run",
    "--allow-all",
    MAIN,
    "plugin",
    "--state-dir",
    join(dir, "state"),
  ];
  const [command, ...args] = netns === undefined ? deno : ["ip", "netns", "exec", netns, ...deno];
  return new Deno.Command(command!, {
    args,
    env: { PLUGIN_UNIX_SOCKET_DIR: dir, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** The first line of `stream`, and a promise of everything after it. */
export async function firstLine(stream: ReadableStream<Uint8Array>) {
  const reader = stream.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  const rest = (async () => {
    let after = text.slice(text.indexOf("\n") + 1);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return after;
      after += new TextDecoder().decode(value);
    }
  })();
  return { line: text.split("\n")[0]!, rest };
}

export const raw = (value: Uint8Array) => Buffer.from(value);
export const bytes = (value: Buffer) => new Uint8Array(value);

export function unary(client: grpc.Client, path: string, request: Uint8Array) {
  return new Promise<Uint8Array>((resolve, reject) =>
    client.makeUnaryRequest(path, raw, bytes, request, (error, reply) => {
      if (error) reject(error);
      else resolve(reply!);
    })
  );
}

/** A typed unary call of one of Berth's own services. */
export function call<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  name: string,
  input: I,
  output: O,
  request: MessageInitShape<I>,
): Promise<MessageShape<O>> {
  return unary(client, `/${name}`, toBinary(input, create(input, request)))
    .then((reply) => fromBinary(output, reply));
}

/** Closes `client` and ends `child` whatever state it is in (SIGKILL if still running). */
export async function endChild(child: Deno.ChildProcess, client: grpc.Client) {
  client.close();
  try {
    child.kill("SIGKILL");
  } catch {
    // exited already
  }
  await child.status;
  await child.stderr.cancel().catch(() => {});
}

/**
 * `berth plugin` as a go-plugin backend to launch: a real go-plugin plugin, with its state and
 * socket in `dir`. It answers its own cookie; a real backend answers BERTH_BACKEND.
 */
export function berthAsBackend(dir: string) {
  return {
    command: [Deno.execPath(), "run", "--allow-all", MAIN, "plugin", "--state-dir", join(dir, "s")],
    env: { ...COOKIE, PLUGIN_UNIX_SOCKET_DIR: dir },
  };
}
