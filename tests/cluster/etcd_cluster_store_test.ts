// Two real dockerds 20.10, each in a network namespace of its own (a "host") with its own Berth node
// there, on one cluster whose log is a real three-member etcd, and given the same etcd as their
// deprecated cluster store (--cluster-store etcd://…, libkv over etcd's v2 API, which the members
// serve with --enable-v2). That store is the global datastore libnetwork lacks outside swarm mode
// (see etcd_dockerd_test.ts): with it a Berth network made on A is stored, listed on B, and joined
// by a container on each daemon, addressed from Berth's one IPAM; the two talk through Berth's VXLAN
// over the hosts' underlay. The network is removed through B, the daemon that did not make it:
// both Berths then drop their copy of its bridge and VXLAN device. Every process, namespace, link,
// container and network made here is gone at the end, whatever happened.
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Dockerd, dockerdAvailable, startDockerd } from "../e2e/_dockerd.ts";
import { type BerthProcess, spawnBerth } from "../helpers/berth_process.ts";
import { ip, leavingNothing, type Made, netns } from "../helpers/netns.ts";
import { onPath, skipUnless } from "../helpers/skip.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { until } from "../helpers/wait.ts";
import { etcdMissing, startEtcdCluster } from "../etcd/_etcd_cluster.ts";

const NAME = "dockerd's cluster store on etcd: a Berth network across two hosts, pinged through";
const NODES = ["a", "b"] as const;
type Node = typeof NODES[number];
const UNDERLAY: Record<Node, string> = { a: "198.19.0.1", b: "198.19.0.2" };
// Each host's way to etcd: a veth to the root namespace, where etcd listens on the root end too.
const TO_ETCD: Record<Node, { root: string; host: string }> = {
  a: { root: "198.18.251.1", host: "198.18.251.2" },
  b: { root: "198.18.251.5", host: "198.18.251.6" },
};

function log(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`${line}\n`));
}

function missing(): string | null {
  const { ok, why } = dockerdAvailable();
  if (!ok) return why;
  for (const tool of ["unshare", "nsenter", "ip"]) {
    if (!onPath(tool)) return `needs ${tool}`;
  }
  return null;
}

async function networkNames(d: Dockerd): Promise<string[]> {
  const out = await d.docker(["network", "ls", "--format", "{{.Name}}"]);
  return out.stdout.split("\n").filter(Boolean).sort();
}

type NetworkInfo = { Id: string; Driver: string; Scope: string };

async function inspectNetwork(d: Dockerd, name: string): Promise<NetworkInfo> {
  return JSON.parse(
    (await d.docker(["network", "inspect", "--format", "{{json .}}", name])).stdout,
  );
}

async function addressOf(d: Dockerd, container: string, network: string): Promise<string> {
  const format = `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`;
  return (await d.docker(["inspect", "--format", format, container])).stdout.trim();
}

/** Lines `[INFO] berth: <Method> …: ok in` of a Berth's log, as "<Method> <subject>". */
function calls(berth: BerthProcess): string[] {
  return berth.stderr().split("\n").flatMap((line) => {
    const match = line.match(/berth: ((?:Ipam|Network)Driver\.\w+) (.*): ok in/);
    return match ? [`${match[1]} ${match[2]}`] : [];
  });
}

async function berthLinks(ns: string): Promise<string[]> {
  const list = JSON.parse(await ip("-n", ns, "-json", "link", "show")) as { ifname: string }[];
  return list.map((link) => link.ifname).filter((name) => name.startsWith("bth")).sort();
}

/** The keys under `prefix` in etcd's v2 keyspace (dockerd's cluster store), recursively. */
async function v2Keys(endpoint: string, prefix: string): Promise<string[]> {
  const response = await fetch(`http://${endpoint}/v2/keys${prefix}?recursive=true`);
  if (response.status === 404) {
    await response.body?.cancel();
    return [];
  }
  type V2Node = { key: string; dir?: boolean; nodes?: V2Node[] };
  const { node } = await response.json() as { node: V2Node };
  const keys: string[] = [];
  const walk = (n: V2Node) => n.dir ? (n.nodes ?? []).forEach(walk) : keys.push(n.key);
  walk(node);
  return keys.sort();
}

Deno.test({
  name: NAME,
  ignore: skipUnless(NAME, etcdMissing(), missing()),
  async fn(t) {
    await leavingNothing((made) => scenario(t, made));
  },
});

async function scenario(t: Deno.TestContext, made: Made) {
  const plugin = `berth-cs-${crypto.randomUUID().slice(0, 8)}`;
  const step = async (name: string, fn: () => Promise<void>) => {
    if (!await t.step(name, fn)) throw new Error(`Step failed: ${name}`);
  };
  // Disposed in reverse: the dockerds first (they remove leftover containers while Berth still
  // answers), then the Berths, etcd, and the namespaces with every link in them.
  await using hostA = await netns("csa");
  await using hostB = await netns("csb");
  made.netns.push(hostA.name, hostB.name);
  const host: Record<Node, string> = { a: hostA.name, b: hostB.name };
  // The underlay: one link between the hosts, nothing routed anywhere else.
  await ip(
    ...["-n", host.a, "link", "add", "under0", "type", "veth"],
    ...["peer", "name", "under0", "netns", host.b],
  );
  for (const node of NODES) {
    await ip("-n", host[node], "addr", "add", `${UNDERLAY[node]}/16`, "dev", "under0");
    await ip("-n", host[node], "link", "set", "under0", "up");
  }
  const tag = crypto.randomUUID().slice(0, 6);
  for (const node of NODES) {
    const root = `btk${tag}${node}`;
    made.rootLinks.push(root);
    await ip("link", "add", root, "type", "veth", "peer", "name", "etcd0", "netns", host[node]);
    await ip("addr", "add", `${TO_ETCD[node].root}/30`, "dev", root);
    await ip("link", "set", root, "up");
    await ip("-n", host[node], "addr", "add", `${TO_ETCD[node].host}/30`, "dev", "etcd0");
    await ip("-n", host[node], "link", "set", "etcd0", "up");
    // Every member advertises its address on each host's veth: dockerd's etcd client (libkv,
    // etcd v2) syncs its endpoints from them and may pick the other host's one.
    await ip("-n", host[node], "route", "add", "198.18.251.0/24", "via", TO_ETCD[node].root);
  }
  await using etcd = await startEtcdCluster(3, {
    clientHosts: NODES.map((node) => TO_ETCD[node].root),
    enableV2: true,
  });
  await using dir = await tempDir("berth-cluster-store-");
  const pluginDir = (node: Node) => join(dir.path, `plugins-${node}`);
  const socket = (node: Node) => join(pluginDir(node), `${plugin}.sock`);
  const spawn = async (node: Node) => {
    await Deno.mkdir(pluginDir(node));
    const endpoints = etcd.endpointsOn(TO_ETCD[node].root);
    return spawnBerth(
      [
        "serve",
        ...["--socket", socket(node), "--state-dir", join(dir.path, node)],
        ...["--store", "etcd", "--cluster", "clusterstore", "--node", node],
        ...["--etcd-endpoints", endpoints.map((e) => `http://${e}`).join(",")],
        ...["--advertise-address", UNDERLAY[node]],
      ],
      {},
      { netns: host[node] },
    );
  };
  await using berthA = await spawn("a");
  await using berthB = await spawn("b");
  const berth: Record<Node, BerthProcess> = { a: berthA, b: berthB };
  // Berth's log on failure too, once the dockerds are gone (disposed before this).
  using _logs = {
    [Symbol.dispose]() {
      for (const node of NODES) log(`[berth ${node} stderr]\n${berth[node].stderr().trimEnd()}`);
    },
  };
  await Promise.all(NODES.map((node) => berth[node].ready(socket(node))));
  const start = (node: Node) =>
    startDockerd({
      log: (line) => log(`[dockerd ${node.toUpperCase()}] ${line}`),
      pluginDir: pluginDir(node),
      netns: host[node],
      extraFlags: [
        // Every member, as this host reaches them; no path: libnetwork's keys go under /docker.
        ...["--cluster-store", `etcd://${etcd.endpointsOn(TO_ETCD[node].root).join(",")}`],
        ...["--cluster-advertise", `${UNDERLAY[node]}:2376`],
      ],
    });
  await using A = await start("a");
  await using B = await start("b");
  const [x] = crypto.getRandomValues(new Uint8Array(1)).map((n) => 128 + (n % 120));
  const subnet = `198.18.${x}.0/24`;
  const v2 = etcd.endpoints[0]!;
  let id = "";

  await step("a Berth network made on A is stored in etcd v2 and listed on B", async () => {
    const made = await A.docker([
      ...["network", "create", "-d", plugin, "--ipam-driver", plugin],
      ...["--subnet", subnet, "n1"],
    ]);
    id = made.stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    await until("B to list n1", async () => (await networkNames(B)).includes("n1"), 20_000);
    const onB = await inspectNetwork(B, "n1");
    assert.deepEqual([onB.Id, onB.Driver, onB.Scope], [id, plugin, "global"]);
    const keys = await v2Keys(v2, "/docker/network/v1.0/network");
    log(`v2 keys: ${JSON.stringify(await v2Keys(v2, "/docker"))}`);
    assert.deepEqual(keys, [`/docker/network/v1.0/network/${id}`]);
    const short = id.slice(0, 12);
    assert.deepEqual(calls(berthA), [
      `IpamDriver.RequestPool pool "${subnet}"`,
      `IpamDriver.RequestAddress pool "${subnet}"`,
      `NetworkDriver.CreateNetwork network ${short}`,
    ]);
    assert.deepEqual(calls(berthB), []);
  });

  await step("a container on each daemon, addressed by the one IPAM, pings the other", async () => {
    for (const [d, name] of [[A, "ca"], [B, "cb"]] as const) {
      await d.docker(["run", "-d", "--network", "n1", "--name", name, d.image, "sleep", "1000"]);
    }
    const base = subnet.replace(/0\/24$/, "");
    const address = { a: await addressOf(A, "ca", "n1"), b: await addressOf(B, "cb", "n1") };
    assert.deepEqual(address, { a: `${base}2`, b: `${base}3` });
    const short = id.slice(0, 12);
    for (const node of NODES) {
      const joined = calls(berth[node]).filter((call) => call.startsWith("NetworkDriver.Join"));
      assert.equal(joined.length, 1, `${node}: ${calls(berth[node]).join("\n")}`);
      assert.match(joined[0]!, new RegExp(`of network ${short}$`));
    }
    for (const [d, name, to] of [[A, "ca", address.b], [B, "cb", address.a]] as const) {
      const ping = await d.docker(["exec", name, "ping", "-c", "3", "-W", "2", to]);
      assert.match(ping.stdout, /3 packets transmitted, 3 packets received, 0% packet loss/);
    }
  });

  await step("B removes the network once the containers are gone; nothing is left", async () => {
    await A.docker(["rm", "-f", "ca"]);
    await B.docker(["rm", "-f", "cb"]);
    assert.equal((await B.docker(["network", "rm", "n1"])).stdout, "n1\n");
    await until("A to forget n1", async () => !(await networkNames(A)).includes("n1"), 20_000);
    assert.deepEqual(await v2Keys(v2, "/docker/network/v1.0/network"), []);
    const short = id.slice(0, 12);
    // The network was made by A's dockerd, removed by B's: b's Berth deletes it for the cluster.
    assert.ok(calls(berthB).includes(`NetworkDriver.DeleteNetwork network ${short}`));
    assert.ok(calls(berthB).includes(`IpamDriver.ReleasePool pool "${subnet}"`));
    for (const node of NODES) {
      await until(`no Berth link left on ${node}`, async () => {
        return (await berthLinks(host[node])).length === 0;
      }).catch(async (error) => {
        log(`${node}: ${await ip("-n", host[node], "-d", "link", "show")}`);
        throw error;
      });
    }
  });

  for (const node of NODES) {
    const bad = berth[node].stderr().split("\n").filter((line) => /\[(WARN|ERROR)\]/.test(line));
    assert.deepEqual(bad, [], `Berth ${node} warned or failed`);
  }
}
