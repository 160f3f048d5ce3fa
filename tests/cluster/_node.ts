// A Berth node of a test cluster: its `serve` command line over etcd members on loopback, with
// its socket and state dir in `dir` under its name.
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Reply as PluginReply } from "../helpers/plugin_socket.ts";

/** The socket of node `node` in `dir`. */
export function nodeSocket(dir: string, node: string): string {
  return join(dir, `${node}.sock`);
}

/**
 * `serve` as node `node` of cluster `cluster` over the members `endpoints` (`host:port`), on
 * `socket` (by default nodeSocket(dir, node)).
 */
export function nodeArgs(
  dir: string,
  node: string,
  cluster: { endpoints: string[]; name: string },
  extra: string[] = [],
  socket: string = nodeSocket(dir, node),
): string[] {
  return [
    "serve",
    ...["--socket", socket, "--state-dir", join(dir, node)],
    ...["--store", "etcd", "--cluster", cluster.name, "--node", node],
    ...["--etcd-endpoints", cluster.endpoints.map((endpoint) => `http://${endpoint}`).join(",")],
    ...extra,
  ];
}

/** Calls `method` on a node's plugin socket and asserts a 200; its body. */
export async function callOk<T = Record<string, string>>(
  client: { call(method: string, body?: unknown): Promise<PluginReply> },
  method: string,
  body: unknown,
): Promise<T> {
  const reply = await client.call(method, body);
  assert.equal(reply.status, 200, `${method} ${JSON.stringify(body)}: ${reply.text}`);
  return reply.body as T;
}
