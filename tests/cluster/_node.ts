// A Berth node of a test cluster: its `serve` command line over etcd members on loopback, with
// its socket and state dir in `dir` under its name.
import { join } from "node:path";

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
