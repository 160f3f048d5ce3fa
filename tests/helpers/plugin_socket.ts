// A real Berth in this process, on a real unix socket in a temp dir, and a client for it.
import { join } from "node:path";
import { startBerth } from "../../main.ts";

export type Reply = { status: number; contentType: string | null; body: unknown; text: string };

/** Posts `body` (a string is sent as is, an object as JSON, undefined as nothing) to `method`. */
export type Call = (method: string, body?: unknown) => Promise<Reply>;

/** A client on `socket` that speaks to the plugin as dockerd does: POST, no content type. */
export function pluginClient(socket: string): { call: Call } & Disposable {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
  async function call(method: string, body?: unknown): Promise<Reply> {
    const payload = body === undefined
      ? ""
      : typeof body === "string"
      ? body
      : JSON.stringify(body) + "\n";
    const response = await fetch(`http://plugin.moby.localhost/${method}`, {
      method: "POST",
      body: payload,
      headers: { accept: "application/vnd.docker.plugins.v1.2+json" },
      client,
    });
    const text = await response.text();
    let parsed: unknown = undefined;
    try {
      parsed = JSON.parse(text);
    } catch {
      // left undefined: the test decides whether a non-JSON body is a failure
    }
    return {
      status: response.status,
      contentType: response.headers.get("content-type"),
      body: parsed,
      text,
    };
  }
  return { call, [Symbol.dispose]: () => client.close() };
}

export type InProcessBerth = {
  socket: string;
  stateDir: string;
  call: Call;
  /** Warnings and internal errors Berth reported. */
  errors: string[];
} & AsyncDisposable;

/** Starts Berth as main.ts wires it, on `<dir>/berth.sock` with state in `<dir>/state`. */
export async function startInProcess(dir: string): Promise<InProcessBerth> {
  const stateDir = join(dir, "state");
  const socket = join(dir, "berth.sock");
  const errors: string[] = [];
  const berth = await startBerth({
    socket,
    stateDir,
    warn: (message) => errors.push(message),
    report: (message) => errors.push(message),
  });
  const client = pluginClient(socket);
  return {
    socket,
    stateDir,
    call: client.call,
    errors,
    async [Symbol.asyncDispose]() {
      client[Symbol.dispose]();
      await berth.stop();
    },
  };
}
