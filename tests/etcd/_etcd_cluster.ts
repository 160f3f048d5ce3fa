// A real three-member etcd cluster on loopback for the etcd tests: free ports, its own data dirs
// under /var/tmp (real fsync: no --unsafe-no-fsync), SIGKILL and restart of one member. It signals
// only the processes it started, by PID, and removes its directory on dispose, even after a failure.
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { onPath } from "../helpers/skip.ts";

/** Why the etcd tests cannot run here (Debian: etcd-server, etcd-client), or null. */
export function etcdMissing(): string | null {
  if (!onPath("etcd")) return "needs etcd (Debian package etcd-server)";
  if (!onPath("etcdctl")) return "needs etcdctl (Debian package etcd-client)";
  return null;
}

type Member = {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  logFile: string;
  child: Deno.ChildProcess | null;
};

export type EtcdCluster = {
  /** `127.0.0.1:<port>` of every member, in member order. */
  endpoints: string[];
  /** `<host>:<port>` of every member, for one of the `clientHosts` it was started with. */
  endpointsOn(host: string): string[];
  /** SIGKILLs member `index` (by its PID) and waits until it is gone. */
  kill(index: number): Promise<void>;
  /** SIGSTOPs member `index`: its sockets stay open and silent, like a member cut off. */
  freeze(index: number): void;
  /** SIGCONTs member `index`. */
  thaw(index: number): void;
  /** Starts member `index` again on its data dir and waits until the cluster is healthy. */
  restart(index: number): Promise<void>;
  /** Member id (decimal, as in a response header) of every member, in member order. */
  memberIds: string[];
  /** Index of the member that is raft leader now, as member `via` sees it. */
  leader(via?: number): Promise<number>;
  /** The last lines of member `index`'s log, for failure messages. */
  logTail(index: number, lines?: number): string;
  /** Runs `etcdctl` (v3 API) against the members with `args` and `stdin`; its stdout, or throws. */
  etcdctl(args: string[], stdin?: string): Promise<string>;
} & AsyncDisposable;

const HEALTHY_WITHIN_MS = 30_000;
const MEMBER_ID_REGEXP = /"MemberID" : (\d+)/;
const LEADER_REGEXP = /"Leader" : (\d+)/;

/**
 * Starts a three-member cluster and resolves once every member reports healthy. Members listen
 * for clients on 127.0.0.1 and on each of `clientHosts` too (local addresses the caller made, for
 * clients in other network namespaces), on the same port. With `enableV2` they serve etcd's v2
 * API too (a keyspace of its own): libkv, behind dockerd's deprecated --cluster-store, speaks it.
 */
export async function startEtcdCluster(
  size = 3,
  options: { clientHosts?: string[]; enableV2?: boolean } = {},
): Promise<EtcdCluster> {
  const clientHosts = options.clientHosts ?? [];
  const enableV2 = options.enableV2 ?? false;
  const root = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "berth-etcd-" });
  const members: Member[] = [];
  try {
    const ports = freePorts(size * 2);
    for (let i = 0; i < size; i++) {
      members.push({
        name: `m${i}`,
        clientPort: ports[2 * i]!,
        peerPort: ports[2 * i + 1]!,
        dataDir: join(root, `m${i}`),
        logFile: join(root, `m${i}.log`),
        child: null,
      });
    }
    const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(",");
    const token = `berth-test-${crypto.randomUUID()}`;
    for (const member of members) {
      member.child = spawnMember(member, initialCluster, token, clientHosts, enableV2);
    }
    await waitHealthy(members);
    const ids: string[] = [];
    for (const member of members) ids.push((await endpointStatus(member)).id);
    return cluster(root, members, ids, { initialCluster, token, clientHosts, enableV2 });
  } catch (error) {
    await stopAll(members);
    await Deno.remove(root, { recursive: true }).catch(() => {});
    throw error;
  }
}

function cluster(
  root: string,
  members: Member[],
  memberIds: string[],
  { initialCluster, token, clientHosts, enableV2 }: {
    initialCluster: string;
    token: string;
    clientHosts: string[];
    enableV2: boolean;
  },
): EtcdCluster {
  const endpoints = members.map((m) => `127.0.0.1:${m.clientPort}`);
  return {
    endpoints,
    async etcdctl(args, stdin) {
      const child = new Deno.Command("etcdctl", {
        args: [`--endpoints=${endpoints.join(",")}`, ...args],
        env: { ETCDCTL_API: "3" },
        stdin: stdin === undefined ? "null" : "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      if (stdin !== undefined) {
        const writer = child.stdin.getWriter();
        await writer.write(new TextEncoder().encode(stdin));
        await writer.close();
      }
      const out = await child.output();
      const decoder = new TextDecoder();
      if (!out.success) throw new Error(`etcdctl ${args.join(" ")}: ${decoder.decode(out.stderr)}`);
      return decoder.decode(out.stdout);
    },
    endpointsOn(host) {
      if (!clientHosts.includes(host)) throw new Error(`etcd does not listen on ${host}`);
      return members.map((m) => `${host}:${m.clientPort}`);
    },
    memberIds,
    async kill(index) {
      await stop(memberAt(members, index));
    },
    freeze(index) {
      memberAt(members, index).child?.kill("SIGSTOP");
    },
    thaw(index) {
      memberAt(members, index).child?.kill("SIGCONT");
    },
    async restart(index) {
      const member = memberAt(members, index);
      if (member.child !== null) throw new Error(`Cannot restart member ${index}: still running`);
      member.child = spawnMember(member, initialCluster, token, clientHosts, enableV2);
      await waitHealthy(members.filter((m) => m.child !== null));
    },
    async leader(via = 0) {
      const leader = (await endpointStatus(memberAt(members, via))).leader;
      const index = memberIds.indexOf(leader);
      if (index < 0) throw new Error(`Leader ${leader} is none of ${memberIds.join(", ")}`);
      return index;
    },
    logTail(index, lines = 20) {
      return readTail(memberAt(members, index).logFile, lines);
    },
    async [Symbol.asyncDispose]() {
      await stopAll(members);
      await Deno.remove(root, { recursive: true }).catch(() => {});
    },
  };
}

function memberAt(members: Member[], index: number): Member {
  const member = members[index];
  if (member === undefined) throw new Error(`No etcd member ${index}`);
  return member;
}

/** Ports the kernel hands out now; a tiny race with other listeners is accepted. */
function freePorts(count: number): number[] {
  const listeners = Array.from(
    { length: count },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const listener of listeners) listener.close();
  return ports;
}

function spawnMember(
  member: Member,
  initialCluster: string,
  token: string,
  clientHosts: string[],
  enableV2: boolean,
): Deno.ChildProcess {
  const client = `http://127.0.0.1:${member.clientPort}`;
  const listen = [client, ...clientHosts.map((host) => `http://${host}:${member.clientPort}`)];
  const peer = `http://127.0.0.1:${member.peerPort}`;
  // libkv's v2 client replaces its endpoints by the members' advertised client URLs (AutoSync),
  // so a v2 client in another namespace needs the member's address on its side advertised too.
  const advertised = enableV2 ? listen : [client];
  // Logs go to a file (zap's --log-outputs), so no pipe has to be drained or closed.
  return new Deno.Command("etcd", {
    args: [
      `--name=${member.name}`,
      `--data-dir=${member.dataDir}`,
      `--listen-client-urls=${listen.join(",")}`,
      `--advertise-client-urls=${advertised.join(",")}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=${initialCluster}`,
      `--initial-cluster-token=${token}`,
      "--initial-cluster-state=new",
      "--logger=zap",
      `--log-outputs=${member.logFile}`,
      ...(enableV2 ? ["--enable-v2=true"] : []),
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

async function stop(member: Member): Promise<void> {
  const child = member.child;
  if (child === null) return;
  member.child = null;
  try {
    child.kill("SIGKILL");
  } catch {
    // already exited: its status below still has to be awaited
  }
  await child.status;
}

async function stopAll(members: Member[]): Promise<void> {
  await Promise.all(members.map(stop));
}

async function waitHealthy(members: Member[]): Promise<void> {
  const deadline = Date.now() + HEALTHY_WITHIN_MS;
  for (const member of members) {
    while (!(await healthy(member))) {
      if (Date.now() > deadline) {
        throw new Error(
          `etcd member ${member.name} not healthy within ${HEALTHY_WITHIN_MS} ms:\n` +
            readTail(member.logFile, 20),
        );
      }
      await sleep(100);
    }
  }
}

/** True once the member answers /health with {"health":"true"} (it then sees a leader). */
async function healthy(member: Member): Promise<boolean> {
  if (member.child === null) return false;
  try {
    const response = await fetch(`http://127.0.0.1:${member.clientPort}/health`, {
      signal: AbortSignal.timeout(2_000),
    });
    const body = await response.json() as { health?: string };
    return body.health === "true";
  } catch {
    return false;
  }
}

async function endpointStatus(member: Member): Promise<{ id: string; leader: string }> {
  const output = await new Deno.Command("etcdctl", {
    args: [
      `--endpoints=127.0.0.1:${member.clientPort}`,
      "--dial-timeout=2s",
      "--command-timeout=3s",
      "endpoint",
      "status",
      "-w",
      "fields",
    ],
    stdin: "null",
    env: { ETCDCTL_API: "3" },
  }).output();
  // "fields" prints the 64-bit id as a decimal token; JSON.parse would round it to a double.
  const text = new TextDecoder().decode(output.stdout);
  const id = MEMBER_ID_REGEXP.exec(text)?.[1];
  const leader = LEADER_REGEXP.exec(text)?.[1];
  if (!output.success || id === undefined || leader === undefined) {
    throw new Error(`etcdctl endpoint status failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return { id, leader };
}

function readTail(path: string, lines: number): string {
  try {
    return Deno.readTextFileSync(path).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}
