// A real Berth in this process, on a real unix socket in a temp dir, and a client for it.
import { join } from "node:path";
import type { CheckpointPolicy } from "../../src/engine/checkpoint.ts";
import { type RunningBerth, startBerth } from "../../src/start_berth.ts";
import type { AdminAddress } from "../../src/transport/admin/address.ts";
import { connectPlugin, type PluginClient, type PluginReply } from "./plugin_client.ts";

export type Reply = PluginReply;

/** Posts `body` (a string is sent as is, an object as JSON, undefined as nothing) to `method`. */
export type Call = (method: string, body?: unknown) => Promise<Reply>;

/**
 * A client on `socket` that speaks to the plugin as dockerd does: POST, no content type, a pool of
 * keep-alive connections with one request in flight on each.
 */
export function pluginClient(socket: string): { call: Call } & Disposable {
  const idle: PluginClient[] = [];
  const all = new Set<PluginClient>();
  async function call(method: string, body?: unknown): Promise<Reply> {
    const connection = idle.pop() ?? await connectPlugin(socket);
    all.add(connection);
    try {
      const reply = await connection.call(`/${method}`, body);
      if (connection.closed) all.delete(connection);
      else idle.push(connection);
      return reply;
    } catch (error) {
      connection.close();
      all.delete(connection);
      throw error;
    }
  }
  return {
    call,
    [Symbol.dispose]() {
      for (const connection of all) connection.close();
    },
  };
}

export type InProcessBerth = {
  socket: string;
  stateDir: string;
  call: Call;
  /** Warnings and internal errors Berth reported. */
  errors: string[];
  /**
   * The same less reports of stray bth* links: a Berth in the host namespace sees those that
   * other tests or runs on this host leave there, which says nothing of this test.
   */
  problems(): string[];
  /** The running Berth itself, for tests that read its engine or admin endpoint. */
  berth: RunningBerth;
} & AsyncDisposable;

/** Starts Berth as main.ts wires it, on `<dir>/berth.sock` with state in `<dir>/state`. */
export async function startInProcess(
  dir: string,
  options: {
    netns?: string;
    ip?: string;
    repairOrphans?: boolean;
    admin?: AdminAddress;
    segmentBytes?: number;
    checkpoints?: CheckpointPolicy;
  } = {},
): Promise<InProcessBerth> {
  const stateDir = join(dir, "state");
  const socket = join(dir, "berth.sock");
  const errors: string[] = [];
  const berth = await startBerth({
    ...options,
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
    berth,
    problems: () => errors.filter((error) => !error.includes("has Berth's name but no network")),
    async [Symbol.asyncDispose]() {
      client[Symbol.dispose]();
      await berth.stop();
    },
  };
}
