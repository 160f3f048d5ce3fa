// The IPAM phases: RequestAddress/ReleaseAddress pairs on one pool at 1, 16 and 64 clients, each
// reply checked, on a Berth of its own (every reply waits for its record's fdatasync).
import { join } from "node:path";
import type { PluginClient, PluginReply } from "../tests/helpers/plugin_client.ts";
import { spawnBerth } from "./_process.ts";
import { settle } from "./_start_time.ts";
import {
  berthPhase,
  CLIENT_COUNTS,
  connectAll,
  type Context,
  failOnErrors,
  MAX_CLIENTS,
  progress,
  SECONDS,
  stopBerth,
} from "./_context.ts";
import { expectEmpty, runPhase, type Unit } from "./_workloads.ts";
import { etcdMissing, startEtcdCluster } from "../tests/etcd/_etcd_cluster.ts";
import { createEtcdClient } from "../src/log/etcd_client.ts";

/** The one pool every client draws from: 1,022 usable addresses, far more than 64 clients hold. */
const POOL = "198.18.40.0/22";
const POOL_FIRST = ipNumber("198.18.40.1");
const POOL_LAST = ipNumber("198.18.43.254");
const ADDRESS_REGEXP = /^(\d{1,3}(?:\.\d{1,3}){3})\/22$/;
/** Addresses held throughout the last phase: 900 + 64 in flight leaves 58 of 1,022 free. */
const STANDING = 900;
export const IPAM_PAIR = "request/release address";

function ipNumber(text: string): number {
  return text.split(".").reduce((ip, part) => ip * 256 + Number(part), 0);
}

function fail(what: string, reply: PluginReply): never {
  throw new Error(`expected 200 ${what}, got ${reply.status} ${reply.text.slice(0, 200)}`);
}

/** Checks `{"PoolID": POOL, "Pool": POOL, "Data": {}}` (Data may be absent). */
function expectPool(reply: PluginReply) {
  const body = reply.body as Record<string, unknown> | null;
  const keys = typeof body === "object" && body !== null ? Object.keys(body) : [];
  if (
    reply.status !== 200 || body === null || body.PoolID !== POOL || body.Pool !== POOL ||
    !keys.every((key) => ["PoolID", "Pool", "Data"].includes(key)) || !isEmptyData(body.Data)
  ) {
    fail(`{"PoolID":"${POOL}","Pool":"${POOL}"}`, reply);
  }
}

function isEmptyData(data: unknown): boolean {
  return data === undefined ||
    (typeof data === "object" && data !== null && Object.keys(data).length === 0);
}

/** Checks `{"Address": "<usable IP of POOL>/22", "Data": {}}`; returns the bare IP. */
function expectAddress(reply: PluginReply): string {
  const body = reply.body as Record<string, unknown> | null;
  const keys = typeof body === "object" && body !== null ? Object.keys(body) : [];
  const match = typeof body?.Address === "string" ? ADDRESS_REGEXP.exec(body.Address) : null;
  const ip = match ? ipNumber(match[1]!) : NaN;
  if (
    reply.status !== 200 || match === null || !(ip >= POOL_FIRST && ip <= POOL_LAST) ||
    !keys.every((key) => ["Address", "Data"].includes(key)) || !isEmptyData(body?.Data)
  ) {
    fail(`{"Address":"<usable address of ${POOL}>/22"}`, reply);
  }
  return match[1]!;
}

/**
 * RequestAddress (lowest free) then ReleaseAddress of the bare IP; 2 log records per pair.
 * Also checks no address is handed to two clients at once: an address joins `held` when its
 * grant arrives and leaves just before its release is sent, so Berth still holds it all along.
 */
function addressPairUnit(standing: ReadonlySet<string> = new Set()): Unit {
  const held = new Map<string, number>([...standing].map((address) => [address, -1]));
  return async (call, client) => {
    let address = "";
    await call("/IpamDriver.RequestAddress", { PoolID: POOL, Address: "" }, (reply) => {
      address = expectAddress(reply);
      const holder = held.get(address);
      if (holder !== undefined) {
        throw new Error(`address ${address} granted while client ${holder} holds it`);
      }
      held.set(address, client);
    });
    held.delete(address);
    await call("/IpamDriver.ReleaseAddress", { PoolID: POOL, Address: address }, expectEmpty);
  };
}

/** Requests POOL once; every client then draws from it. */
async function requestPool(client: PluginClient) {
  expectPool(await client.call("/IpamDriver.RequestPool", { Pool: POOL }));
}

/** Takes `count` addresses of POOL and keeps them, as a big network's containers would. */
async function holdAddresses(client: PluginClient, count: number): Promise<Set<string>> {
  const standing = new Set<string>();
  for (let i = 0; i < count; i++) {
    const reply = await client.call("/IpamDriver.RequestAddress", { PoolID: POOL, Address: "" });
    standing.add(expectAddress(reply));
  }
  if (standing.size !== count) throw new Error(`${count} requests gave ${standing.size} addresses`);
  return standing;
}

/**
 * IPAM throughput on a fresh Berth: a warm-up, then each client count for SECONDS, then 64
 * clients again while STANDING other addresses of the pool are held (a nearly full /22).
 */
export async function runIpamPhases(ctx: Context) {
  const stateDir = join(ctx.dir, "state-ipam");
  const socket = join(ctx.dir, "ipam.sock");
  const berth = spawnBerth(ctx.tracker, { socket, stateDir, label: "Berth (IPAM)" });
  progress(`Berth (IPAM) pid ${berth.pid} ready after ${(await berth.ready()).toFixed(0)} ms`);
  await settle(berth);
  const clients = await connectAll(ctx, socket, MAX_CLIENTS);
  await requestPool(clients[0]!);
  const target = { berth, stateDir, clients };
  failOnErrors(await runPhase("warm-up", clients, 16, { seconds: 1 }, addressPairUnit()));
  for (const count of CLIENT_COUNTS) {
    await berthPhase(target, ctx.results.ipamRows, {
      workload: IPAM_PAIR,
      count,
      length: { seconds: SECONDS },
      unit: addressPairUnit(),
    });
  }
  const standing = await holdAddresses(clients[0]!, STANDING);
  await berthPhase(target, ctx.results.ipamRows, {
    workload: `${IPAM_PAIR}, ${STANDING} others held`,
    count: MAX_CLIENTS,
    length: { seconds: SECONDS },
    unit: addressPairUnit(standing),
  });
  await stopBerth(berth, clients);
  await runIpamEtcdPhases(ctx);
}

/**
 * The same pairs with the log in a three-member etcd on loopback (each record a transaction on
 * its pool's version, fsynced by a quorum), against the file store above. Skipped without etcd.
 */
async function runIpamEtcdPhases(ctx: Context) {
  const missing = etcdMissing();
  if (missing) {
    progress(`IPAM on etcd skipped: ${missing}`);
    return;
  }
  const etcd = await startEtcdCluster();
  let stopped = false;
  const stopEtcd = async () => {
    if (stopped) return;
    stopped = true;
    await etcd[Symbol.asyncDispose]();
  };
  ctx.cleanups.push(stopEtcd);
  const stateDir = join(ctx.dir, "state-ipam-etcd");
  const socket = join(ctx.dir, "ipam-etcd.sock");
  const endpoints = etcd.endpoints.map((endpoint) => `http://${endpoint}`).join(",");
  const berth = spawnBerth(ctx.tracker, {
    socket,
    stateDir,
    label: "Berth (IPAM on etcd)",
    extraArgs: ["--store", "etcd", "--etcd-endpoints", endpoints, "--cluster", "bench"],
  });
  progress(
    `Berth (IPAM on etcd) pid ${berth.pid} ready after ${(await berth.ready()).toFixed(0)} ms`,
  );
  const clients = await connectAll(ctx, socket, MAX_CLIENTS);
  await requestPool(clients[0]!);
  // One transaction per record: the cluster's etcd revision counts them.
  const client = createEtcdClient({ endpoints: etcd.endpoints, cluster: "bench" });
  ctx.cleanups.push(() => Promise.resolve(client.close()));
  const target = { berth, stateDir, clients, logRecords: () => client.currentRevision() };
  failOnErrors(await runPhase("warm-up", clients, 16, { seconds: 1 }, addressPairUnit()));
  for (const count of [16, MAX_CLIENTS]) {
    await berthPhase(target, ctx.results.ipamRows, {
      workload: `${IPAM_PAIR}, log in 3-member etcd`,
      count,
      length: { seconds: SECONDS },
      unit: addressPairUnit(),
    });
  }
  // Watch lag: a volume made on this node, until a second node answers Get for it.
  const other = spawnBerth(ctx.tracker, {
    socket: join(ctx.dir, "etcd-b.sock"),
    stateDir: join(ctx.dir, "state-etcd-b"),
    label: "Berth (second node)",
    extraArgs: [
      "--store",
      "etcd",
      "--etcd-endpoints",
      endpoints,
      "--cluster",
      "bench",
      "--node",
      "b",
    ],
  });
  await other.ready();
  const [onB] = await connectAll(ctx, other.socket, 1);
  const lags: number[] = [];
  for (let i = 0; i < LAG_SAMPLES; i++) {
    const name = `lag-${i}`;
    const made = await clients[0]!.call("/VolumeDriver.Create", { Name: name });
    if (made.status !== 200) fail("Create", made);
    const acked = performance.now();
    while ((await onB!.call("/VolumeDriver.Get", { Name: name })).status !== 200) {
      if (performance.now() - acked > 5_000) throw new Error(`node b never saw ${name}`);
    }
    lags.push(performance.now() - acked);
  }
  lags.sort((a, b) => a - b);
  const at = (q: number) => lags[Math.min(lags.length - 1, Math.floor(q * lags.length))]!;
  ctx.results.extra.push(
    "### Watch lag between two nodes on etcd\n\n" +
      "| samples | p50 ms | p99 ms | max ms | what |\n| --- | --- | --- | --- | --- |\n" +
      `| ${lags.length} | ${at(0.5).toFixed(2)} | ${at(0.99).toFixed(2)} | ${
        lags.at(-1)!.toFixed(2)
      } ` +
      "| Create acknowledged on node a → Get answered 200 on node b (polled back to back) |",
  );
  progress(`watch lag a → b: p50 ${at(0.5).toFixed(2)} ms, p99 ${at(0.99).toFixed(2)} ms`);
  await stopBerth(other, [onB!]);
  await stopBerth(berth, clients);
  await stopEtcd();
}

/** Volumes made on one node and waited for on the other, for the watch lag. */
const LAG_SAMPLES = 200;
