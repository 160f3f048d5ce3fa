// One Berth network across two hosts: two Berth processes, each in its own network namespace (a
// "host" with an underlay link to the other), share a log in a real three-member etcd. A network
// made on node a is joined by a container on a and one on b, and they talk through the VXLAN
// devices, with forwarding entries taken from the endpoint records of the shared log. Every
// namespace, link and process made here is gone at the end, whatever happened.
import assert from "node:assert/strict";
import { join } from "node:path";
import { FLOOD_MAC, gatewayMac, vxlanName } from "../../src/backends/vxlan_plumbing.ts";
import { spawnBerth } from "../helpers/berth_process.ts";
import { ip, leavingNothing, type Made, netns } from "../helpers/netns.ts";
import { pluginClient } from "../helpers/plugin_socket.ts";
import { onPath, rootMissing, skipUnless } from "../helpers/skip.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { until as waitUntil } from "../helpers/wait.ts";
import { etcdMissing, startEtcdCluster } from "../etcd/_etcd_cluster.ts";

const TEST_NAME = "networks on etcd: containers on two hosts talk through VXLAN";
const UNDERLAY = { a: "198.19.0.1", b: "198.19.0.2" };
// Each host's way to etcd: a veth to the root namespace, where etcd listens on the root end too.
const TO_ETCD = {
  a: { root: "198.18.250.1", host: "198.18.250.2" },
  b: { root: "198.18.250.5", host: "198.18.250.6" },
};
const POOL = "198.18.41.0/24";
const NET = "4e7a11".padEnd(64, "0123456789abcdef");
const EP = { a: "a1".repeat(32), b: "b2".repeat(32) };
const ADDRESS = { a: "198.18.41.2/24", b: "198.18.41.3/24" };
const MAC = { a: "02:42:c6:12:29:02", b: "02:42:c6:12:29:03" };
const bare = (cidr: string) => cidr.split("/")[0]!;

type Client = ReturnType<typeof pluginClient>;

async function ok(client: Client, method: string, body: unknown) {
  const reply = await client.call(method, body);
  assert.equal(reply.status, 200, `${method}: ${reply.text}`);
  return reply.body as Record<string, unknown>;
}

async function bridgeCommand(...args: string[]): Promise<string> {
  const output = await new Deno.Command("bridge", { args, stdin: "null" }).output();
  if (!output.success) {
    throw new Error(`bridge ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
  }
  return new TextDecoder().decode(output.stdout);
}

/** The forwarding entries of `device` in namespace `ns`, as "MAC dst IP" lines. */
async function forwarding(ns: string, device: string): Promise<string[]> {
  const out = await bridgeCommand("-n", ns, "fdb", "show", "dev", device).catch(() => "");
  return out.split("\n").map((line) => /^(\S+) dst (\S+)/.exec(line))
    .filter((match) => match !== null).map((match) => `${match[1]} dst ${match[2]}`);
}

async function berthLinks(ns: string): Promise<string[]> {
  const list = JSON.parse(await ip("-n", ns, "-json", "link", "show")) as { ifname: string }[];
  return list.map((link) => link.ifname).filter((name) => name.startsWith("bth")).sort();
}

/**
 * A round trip over TCP from namespace `from` to `to`:`port` (no ping on this image): a Deno
 * listener in namespace `at` echoes one line, a Deno client in `from` sends one and reads it back.
 */
async function roundTrip(from: string, at: string, to: string, port: number): Promise<string> {
  const server = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      at,
      Deno.execPath(),
      "eval",
      `const l = Deno.listen({ hostname: "${to}", port: ${port} });
       console.log("listening");
       const c = await l.accept();
       const b = new Uint8Array(64); const n = await c.read(b);
       await c.write(new TextEncoder().encode("pong " + new TextDecoder().decode(b.subarray(0, n ?? 0))));
       c.close(); l.close();`,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    const reader = server.stdout.getReader();
    const first = await reader.read();
    reader.releaseLock();
    assert.match(new TextDecoder().decode(first.value ?? new Uint8Array()), /listening/);
    const client = await new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        from,
        Deno.execPath(),
        "eval",
        `const c = await Deno.connect({ hostname: "${to}", port: ${port} });
         await c.write(new TextEncoder().encode("ping"));
         const b = new Uint8Array(64); const n = await c.read(b);
         console.log(new TextDecoder().decode(b.subarray(0, n ?? 0))); c.close();`,
      ],
      stdin: "null",
      signal: AbortSignal.timeout(15_000),
    }).output();
    assert.ok(client.success, new TextDecoder().decode(client.stderr));
    return new TextDecoder().decode(client.stdout).trim();
  } finally {
    try {
      server.kill("SIGKILL");
    } catch {
      // it has exited after its one answer
    }
    await server.stdout.cancel().catch(() => {});
    await server.stderr.cancel();
    await server.status;
  }
}

Deno.test({
  name: TEST_NAME,
  ignore: skipUnless(
    TEST_NAME,
    etcdMissing(),
    rootMissing(),
    onPath("ip") ? null : "needs iproute2's ip",
    onPath("bridge") ? null : "needs iproute2's bridge",
  ),
  async fn() {
    await leavingNothing((made) => scenario(made));
  },
});

async function scenario(made: Made) {
  await using hostA = await netns("hosta");
  await using hostB = await netns("hostb");
  await using cA = await netns("ca");
  await using cB = await netns("cb");
  made.netns.push(hostA.name, hostB.name, cA.name, cB.name);
  // The underlay: one link between the hosts, nothing routed anywhere else.
  await ip(
    "-n",
    hostA.name,
    "link",
    "add",
    "under0",
    "type",
    "veth",
    "peer",
    "name",
    "under0",
    "netns",
    hostB.name,
  );
  for (const [ns, address] of [[hostA.name, UNDERLAY.a], [hostB.name, UNDERLAY.b]] as const) {
    await ip("-n", ns, "addr", "add", `${address}/16`, "dev", "under0");
    await ip("-n", ns, "link", "set", "under0", "up");
  }
  // The way to etcd: a veth from each host to the root namespace (deleted with the host).
  const tag = crypto.randomUUID().slice(0, 6);
  for (const node of ["a", "b"] as const) {
    const ns = node === "a" ? hostA.name : hostB.name;
    const root = `btt${tag}${node}`;
    made.rootLinks.push(root);
    await ip("link", "add", root, "type", "veth", "peer", "name", "etcd0", "netns", ns);
    await ip("addr", "add", `${TO_ETCD[node].root}/30`, "dev", root);
    await ip("link", "set", root, "up");
    await ip("-n", ns, "addr", "add", `${TO_ETCD[node].host}/30`, "dev", "etcd0");
    await ip("-n", ns, "link", "set", "etcd0", "up");
  }
  await using etcd = await startEtcdCluster(3, { clientHosts: [TO_ETCD.a.root, TO_ETCD.b.root] });
  await using dir = await tempDir("berth-vxlan-");
  const args = (node: "a" | "b") => [
    "serve",
    "--socket",
    join(dir.path, `${node}.sock`),
    "--state-dir",
    join(dir.path, node),
    "--store",
    "etcd",
    "--etcd-endpoints",
    etcd.endpointsOn(TO_ETCD[node].root).map((endpoint) => `http://${endpoint}`).join(","),
    "--cluster",
    "vxlantest",
    "--node",
    node,
    "--advertise-address",
    UNDERLAY[node],
  ];
  await using a = spawnBerth(args("a"), {}, { netns: hostA.name });
  await using b = spawnBerth(args("b"), {}, { netns: hostB.name });
  await Promise.all([a.ready(join(dir.path, "a.sock")), b.ready(join(dir.path, "b.sock"))]);
  using clientA = pluginClient(join(dir.path, "a.sock"));
  using clientB = pluginClient(join(dir.path, "b.sock"));
  const client = { a: clientA, b: clientB };
  const host = { a: hostA.name, b: hostB.name };
  const container = { a: cA.name, b: cB.name };

  const caps = await ok(clientB, "NetworkDriver.GetCapabilities", {});
  assert.deepEqual(caps, { Scope: "global", ConnectivityScope: "global" });

  const { PoolID: pool } = await ok(clientA, "IpamDriver.RequestPool", {
    AddressSpace: "GlobalDefault",
    Pool: POOL,
    SubPool: "",
    Options: {},
    V6: false,
  });
  const { Address: gateway } = await ok(clientA, "IpamDriver.RequestAddress", {
    PoolID: pool,
    Address: "",
    Options: { RequestAddressType: "com.docker.network.gateway" },
  });
  assert.equal(gateway, "198.18.41.1/24");
  await ok(clientA, "NetworkDriver.CreateNetwork", {
    NetworkID: NET,
    Options: { "com.docker.network.enable_ipv6": false, "com.docker.network.generic": {} },
    IPv4Data: [{ AddressSpace: "GlobalDefault", Gateway: gateway, Pool: POOL }],
    IPv6Data: [],
  });

  const peers: Record<"a" | "b", string> = { a: "", b: "" };
  for (const node of ["a", "b"] as const) {
    const { Address: address } = await ok(client[node], "IpamDriver.RequestAddress", {
      PoolID: pool,
      Address: "",
      Options: null,
    });
    assert.equal(address, ADDRESS[node]);
    const created = await ok(client[node], "NetworkDriver.CreateEndpoint", {
      NetworkID: NET,
      EndpointID: EP[node],
      Interface: { Address: address, AddressIPv6: "", MacAddress: "" },
      Options: {},
    });
    // dockerd gave no MAC: Berth chose one (the other node forwards to it) and says which.
    assert.deepEqual(created, { Interface: { MacAddress: MAC[node] } });
    const joined = await ok(client[node], "NetworkDriver.Join", {
      NetworkID: NET,
      EndpointID: EP[node],
      SandboxKey: `/var/run/docker/netns/${node}`,
      Options: {},
    });
    const srcName = (joined.InterfaceName as { SrcName: string }).SrcName;
    peers[node] = srcName;
    // What libnetwork does with SrcName: into the container, addressed, up.
    await ip("-n", host[node], "link", "set", srcName, "netns", container[node]);
    await ip("-n", container[node], "addr", "add", address as string, "dev", srcName);
    await ip("-n", container[node], "link", "set", srcName, "up");
    await ip("-n", container[node], "route", "add", "default", "via", bare(gateway as string));
  }

  // Each host: the network's bridge with the gateway and the network's gateway MAC, a VXLAN device
  // on it that keeps ARP for the gateway at home (neigh_suppress), MTU 1450.
  const device = vxlanName(NET);
  const bridgeName: Record<"a" | "b", string> = { a: "", b: "" };
  for (const node of ["a", "b"] as const) {
    const links = await berthLinks(host[node]);
    assert.ok(links.includes(device), `${node}: ${links.join(" ")}`);
    const [link] = JSON.parse(
      await ip("-n", host[node], "-json", "-details", "link", "show", "dev", device),
    ) as { mtu: number; master: string; linkinfo: { info_data: { id: number; port: number } } }[];
    assert.equal(link!.mtu, 1450);
    assert.equal(link!.linkinfo.info_data.id, 0x4e7a11);
    assert.equal(link!.linkinfo.info_data.port, 4789);
    const bridge = JSON.parse(
      await ip("-n", host[node], "-json", "addr", "show", "dev", link!.master),
    ) as { mtu: number; address: string; addr_info: { local: string }[] }[];
    bridgeName[node] = link!.master;
    assert.equal(bridge[0]!.mtu, 1450);
    const addresses = bridge[0]!.addr_info.map((info) => info.local);
    assert.ok(addresses.includes("198.18.41.1"), `${node}: ${addresses}`);
    assert.equal(bridge[0]!.address, gatewayMac(NET));
    const [port] = JSON.parse(
      await bridgeCommand("-n", host[node], "-d", "-j", "link", "show", "dev", device),
    ) as { neigh_suppress?: boolean }[];
    assert.equal(port!.neigh_suppress, true, `${node}: ${JSON.stringify(port)}`);
  }
  // Forwarding entries: on each host, the other's container MAC and a flood entry, to its underlay.
  for (const [node, other] of [["a", "b"], ["b", "a"]] as const) {
    await waitUntil(`${node} forwards to ${other}`, async () => {
      const entries = await forwarding(host[node], device);
      return entries.includes(`${MAC[other]} dst ${UNDERLAY[other]}`) &&
        entries.includes(`${FLOOD_MAC} dst ${UNDERLAY[other]}`);
    });
  }

  // And the other's container as a neighbour of the bridge: its ARP is answered at home.
  for (const [node, other] of [["a", "b"], ["b", "a"]] as const) {
    const neighbours = await ip("-n", host[node], "neigh", "show", "dev", bridgeName[node]);
    assert.ok(
      neighbours.includes(`${bare(ADDRESS[other])} lladdr ${MAC[other]} PERMANENT`),
      `${node}: ${neighbours}`,
    );
  }

  // cA to cB and back, through a's bridge, the VXLAN over the underlay, b's bridge.
  assert.equal(await roundTrip(cA.name, cB.name, bare(ADDRESS.b), 7001), "pong ping");
  // Without a's flood entry to b no ARP request can cross: cA still finds cB, from a's
  // neighbour entry (what the log said of cB), and the two still talk.
  await bridgeCommand("-n", hostA.name, "fdb", "del", FLOOD_MAC, "dev", device, "dst", UNDERLAY.b);
  await ip("-n", cA.name, "neigh", "flush", "all");
  try {
    assert.equal(await roundTrip(cA.name, cB.name, bare(ADDRESS.b), 7007), "pong ping");
  } finally {
    await bridgeCommand(
      "-n",
      hostA.name,
      "fdb",
      "append",
      FLOOD_MAC,
      "dev",
      device,
      "dst",
      UNDERLAY.b,
    );
  }
  assert.equal(await roundTrip(cB.name, cA.name, bare(ADDRESS.a), 7002), "pong ping");
  // Each container's gateway is its own host.
  assert.equal(await roundTrip(cB.name, hostB.name, "198.18.41.1", 7003), "pong ping");
  assert.equal(await roundTrip(cA.name, hostA.name, "198.18.41.1", 7005), "pong ping");
  // a's host unreachable: cB keeps its gateway.
  await ip("-n", hostA.name, "link", "set", "under0", "down");
  try {
    assert.equal(await roundTrip(cB.name, hostB.name, "198.18.41.1", 7006), "pong ping");
  } finally {
    await ip("-n", hostA.name, "link", "set", "under0", "up");
  }

  // b SIGKILLed and started again: it takes up its VXLAN device, puts a's forwarding entries back
  // from the log, and the containers still talk.
  b.kill("SIGKILL");
  await b.exited();
  // What b's kernel held is dropped, so only the log can bring it back.
  for (const mac of [MAC.a, FLOOD_MAC]) {
    await bridgeCommand("-n", hostB.name, "fdb", "del", mac, "dev", device, "dst", UNDERLAY.a);
  }
  await using b2 = spawnBerth(args("b"), {}, { netns: hostB.name });
  await b2.ready(join(dir.path, "b.sock"));
  using clientB2 = pluginClient(join(dir.path, "b.sock")); // b's connections died with it
  client.b = clientB2;
  await waitUntil("b to forward to a again", async () => {
    const entries = await forwarding(host.b, device);
    return entries.includes(`${MAC.a} dst ${UNDERLAY.a}`) &&
      entries.includes(`${FLOOD_MAC} dst ${UNDERLAY.a}`);
  });
  assert.equal(await roundTrip(cA.name, cB.name, bare(ADDRESS.b), 7004), "pong ping");

  // b cut off from etcd (its only link to it down): b's change fails within the bound and says
  // why, a goes on; with the link back, b catches up and never hands out what a did meanwhile.
  await ip("-n", hostB.name, "link", "set", "etcd0", "down");
  const started = Date.now();
  const cut = await client.b.call("IpamDriver.RequestAddress", { PoolID: pool, Address: "" });
  assert.notEqual(cut.status, 200, cut.text);
  assert.match(cut.text, /Store unavailable/);
  assert.ok(Date.now() - started < 10_000, `failed after ${Date.now() - started} ms`);
  const { Address: meanwhile } = await ok(clientA, "IpamDriver.RequestAddress", {
    PoolID: pool,
    Address: "",
  });
  await ip("-n", hostB.name, "link", "set", "etcd0", "up");
  let after = "";
  await waitUntil("b to take changes again", async () => {
    const reply = await client.b.call("IpamDriver.RequestAddress", { PoolID: pool, Address: "" });
    after = String((reply.body as { Address?: string }).Address ?? "");
    return reply.status === 200;
  }, 40_000);
  assert.notEqual(after, meanwhile, "b saw what a handed out while b was cut off");
  for (const address of [meanwhile, after]) {
    await ok(clientA, "IpamDriver.ReleaseAddress", {
      PoolID: pool,
      Address: bare(address as string),
    });
  }

  // b cut off long enough to lose its watch, while a moves on and etcd compacts its history past
  // where b's watch would resume: b cannot hear the others any more, so it stops with one line
  // rather than answer from a state that stays behind. Started again, it reads the cluster afresh.
  const watchLost = () => b2.stderr().split("etcd watch lost").length - 1;
  const lostBefore = watchLost();
  await ip("-n", hostB.name, "link", "set", "etcd0", "down");
  // Two records: etcd keeps the revision it is compacted at, so b must have missed the one before.
  const { Address: whileAway } = await ok(clientA, "IpamDriver.RequestAddress", {
    PoolID: pool,
    Address: "",
  });
  const { Address: alsoAway } = await ok(clientA, "IpamDriver.RequestAddress", {
    PoolID: pool,
    Address: "",
  });
  await waitUntil("b to lose its watch", () => watchLost() > lostBefore, 40_000);
  const { header } = JSON.parse(await etcd.etcdctl(["get", "/", "-w", "json"]));
  await etcd.etcdctl(["compaction", String(header.revision)]);
  await ip("-n", hostB.name, "link", "set", "etcd0", "up");
  await waitUntil("b to stop", () => /stopped; log synced/.test(b2.stderr()), 60_000)
    .catch((error) => {
      throw new Error(`${error.message}; b said:\n${b2.stderr()}`);
    });
  assert.equal((await b2.exited()).code, 1, b2.stderr());
  assert.match(
    b2.stderr(),
    /\[ERROR\] berth: the etcd watch cannot go on: [^\n]*compacted[^\n]*; stopping \(a restart reads the log afresh\)\n/,
  );
  await using b3 = spawnBerth(args("b"), {}, { netns: hostB.name });
  await b3.ready(join(dir.path, "b.sock"));
  using clientB3 = pluginClient(join(dir.path, "b.sock"));
  client.b = clientB3;
  for (const address of [whileAway, alsoAway]) {
    const taken = await client.b.call("IpamDriver.RequestAddress", {
      PoolID: pool,
      Address: bare(address as string),
    });
    assert.notEqual(taken.status, 200, `b handed out ${address} again: ${taken.text}`);
    await ok(clientA, "IpamDriver.ReleaseAddress", {
      PoolID: pool,
      Address: bare(address as string),
    });
  }

  // Leave, DeleteEndpoint, each on its own node; then the network on a.
  for (const node of ["a", "b"] as const) {
    await ok(client[node], "NetworkDriver.Leave", { NetworkID: NET, EndpointID: EP[node] });
    await ok(client[node], "NetworkDriver.DeleteEndpoint", {
      NetworkID: NET,
      EndpointID: EP[node],
    });
    await ok(client[node], "IpamDriver.ReleaseAddress", {
      PoolID: pool,
      Address: bare(ADDRESS[node]),
    });
  }
  await waitUntil("a forgets b's container", async () => {
    const entries = await forwarding(host.a, device);
    const neighbours = await ip("-n", host.a, "neigh", "show", "dev", bridgeName.a);
    return !entries.some((entry) => entry.endsWith(`dst ${UNDERLAY.b}`)) &&
      !neighbours.includes(bare(ADDRESS.b));
  });
  await ok(clientA, "NetworkDriver.DeleteNetwork", { NetworkID: NET });
  await ok(clientA, "IpamDriver.ReleaseAddress", {
    PoolID: pool,
    Address: bare(gateway as string),
  });
  await ok(clientA, "IpamDriver.ReleasePool", { PoolID: pool });
  // b hears the delete and removes its copy of the bridge and its VXLAN device.
  for (const node of ["a", "b"] as const) {
    await waitUntil(`no Berth link left on ${node}`, async () => {
      return (await berthLinks(host[node])).length === 0;
    });
  }
  for (const node of ["a", "b"] as const) {
    assert.deepEqual(await berthLinks(container[node]), [], `${peers[node]} went with its pair`);
  }
  a.kill("SIGTERM");
  b3.kill("SIGTERM");
  assert.equal((await a.exited()).code, 0, a.stderr());
  assert.equal((await b3.exited()).code, 0, b3.stderr());
}
