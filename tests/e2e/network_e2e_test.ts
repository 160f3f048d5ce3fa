// The network user story end to end: the real `main.ts serve` as NetworkDriver (and IpamDriver) of
// a private dockerd (tests/e2e/_dockerd.ts), driven only through the docker CLI, checked on the host.

import assert from "node:assert/strict";
import { join } from "node:path";
import { type Dockerd, requireOrSkip, startDockerd } from "./_dockerd.ts";
import { type BerthProcess, spawnBerth } from "../helpers/berth_process.ts";

const PLUGIN_DIR = "/run/docker/plugins";
const LINK_LINE_REGEXP = /^\d+: ([^:@\s]+)[@:]/;
const PING_OK_REGEXP = /3 packets transmitted, 3 packets received/;
// dockerd only logs (and then ignores) a failed Leave, DeleteEndpoint or ReleaseAddress.
const DRIVER_TROUBLE_REGEXP = /endpoint|sandbox|ip address|ipam|pool|driver|rolled back|plugin/i;
const ORPHAN_WARNING_REGEXP = /\[WARN\] berth: \w+ (bth\w+) has Berth's name but no network/;

function log(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`${line}\n`));
}

function ipNumber(ip: string): number {
  return ip.split(".").reduce((n, part) => n * 256 + Number(part), 0);
}

/** The n-th address of the /24 "a.b.c.0/24". */
function nth(subnet: string, n: number): string {
  const base = ipNumber(subnet.split("/")[0]!) + n;
  return [24, 16, 8, 0].map((shift) => Math.floor(base / 2 ** shift) % 256).join(".");
}

// Every address in this test is in Berth's default pool range, which nothing on a test host
// routes; Docker's default IPAM is never left to pick one of its 172.x/10.x ranges.
function inBerthRange(cidr: string): boolean {
  const n = ipNumber(cidr.split("/")[0]!);
  return Number(cidr.split("/")[1]) >= 15 && n >= ipNumber("198.18.0.0") &&
    n <= ipNumber("198.19.255.255");
}

function escaped(text: string): string {
  return text.replaceAll(".", "\\.");
}

async function ip(...args: string[]): Promise<string> {
  const out = await new Deno.Command("ip", { args, stdin: "null" }).output();
  const decoder = new TextDecoder();
  if (!out.success) throw new Error(`ip ${args.join(" ")}: ${decoder.decode(out.stderr)}`);
  return decoder.decode(out.stdout);
}

type HostLink = {
  ifname: string;
  /** The bridge a port is on. */
  master?: string;
  /** A veth's peer, while both ends are in this netns. */
  link?: string | null;
  "addr_info"?: { family: string; local: string; prefixlen: number }[];
};

async function hostLinks(): Promise<HostLink[]> {
  return JSON.parse(await ip("-json", "addr", "show")) as HostLink[];
}

async function hostLink(name: string): Promise<HostLink | undefined> {
  return (await hostLinks()).find((link) => link.ifname === name);
}

async function ipv4Of(name: string): Promise<string[] | undefined> {
  return (await hostLink(name))?.["addr_info"]?.filter((a) => a.family === "inet")
    .map((a) => `${a.local}/${a.prefixlen}`);
}

/**
 * Host link names this run answers for. The host netns is shared: the bench and other test runs
 * make Berth networks (bthb…) and Docker bridge networks (br-…, with veth… ports) there, with
 * veths that come and go. Those bridges, their ports and the peers beside those ports are left
 * out (Berth names every link bth…, so veth… is never ours); every other link counts, so a veth or
 * bridge of ours that outlives its network is caught.
 */
function ownLinkNames(links: HostLink[], ours: Set<string>): string[] {
  const foreign = (name: string | undefined) =>
    name !== undefined && /^(bthb|br-|docker0$|veth)/.test(name) && !ours.has(name);
  const ports = new Set(links.filter((l) => foreign(l.master)).map((l) => l.ifname));
  return links
    .filter((l) => !foreign(l.ifname) && !ports.has(l.ifname) && !ports.has(l.link ?? ""))
    .map((l) => l.ifname).sort();
}

/** Interface names in `ip -o link` output (busybox prints `eth0@if12` for a veth). */
function linkNames(output: string): string[] {
  return output.split("\n").flatMap((line) => line.match(LINK_LINE_REGEXP)?.[1] ?? []).sort();
}

type Snapshot = { links: string[]; networks: string[]; containers: string[] };

async function snapshot(d: Dockerd, ours: Set<string>): Promise<Snapshot> {
  const lines = async (args: string[]) =>
    (await d.docker(args)).stdout.split("\n").filter(Boolean).sort();
  return {
    links: ownLinkNames(await hostLinks(), ours),
    networks: await lines(["network", "ls", "--format", "{{.Name}} {{.Driver}}"]),
    containers: await lines(["ps", "-a", "--format", "{{.Names}}"]),
  };
}

type Attachment = { IPAddress: string; IPPrefixLen: number; Gateway: string; EndpointID: string };

async function attachment(d: Dockerd, container: string): Promise<Attachment> {
  const format = "{{json .NetworkSettings.Networks}}";
  const out = await d.docker(["inspect", "--format", format, container]);
  const attachment = (JSON.parse(out.stdout) as Record<string, Attachment>)["n1"];
  assert.ok(attachment, `${container} is not on n1: ${out.stdout}`);
  return attachment;
}

async function linksIn(d: Dockerd, container: string): Promise<string[]> {
  return linkNames((await d.docker(["exec", container, "ip", "-o", "link"])).stdout);
}

// -A sends the next ping as soon as a reply comes: three pings in milliseconds, not two seconds.
const PING = (address: string) => `ping -c 3 -A -w 10 ${address}`;

/** Runs `script` with sh in `container`, or in a new container on n1 with `--new`. */
async function shIn(d: Dockerd, where: string, script: string): Promise<string> {
  const args = where === "--new"
    ? ["run", "--rm", "--network", "n1", d.image, "sh", "-c", script]
    : ["exec", where, "sh", "-c", script];
  const out = await d.docker(args, { check: false });
  assert.equal(out.code, 0, `${script} in ${where} failed:\n${out.stdout}${out.stderr}`);
  return out.stdout;
}

async function assertPings(d: Dockerd, from: string, address: string): Promise<string[]> {
  const out = await shIn(d, from, `ip -o link; ${PING(address)}`);
  assert.match(out, PING_OK_REGEXP);
  return linkNames(out);
}

type Variant = { label: string; ipam: "plugin" | "default"; subnet: string | undefined };

type Story = {
  t: Deno.TestContext;
  d: Dockerd;
  plugin: string;
  start: Snapshot;
  restartBerth: () => Promise<void>;
  /** Bridges this run made: snapshots count them (and their ports) as ours. */
  bridges: Set<string>;
};

async function step(
  t: Deno.TestContext,
  name: string,
  fn: (t: Deno.TestContext) => Promise<void>,
): Promise<void> {
  if (!await t.step(name, fn)) throw new Error(`Step failed: ${name}`);
}

async function createNetwork(s: Story, ipam: string, subnet: string | undefined) {
  const create = ["network", "create", "-d", s.plugin, "--ipam-driver", ipam];
  const id = (await s.d.docker([...create, ...(subnet ? ["--subnet", subnet] : []), "n1"]))
    .stdout.trim();
  const bridge = `bthb${id.slice(0, 11)}`;
  s.bridges.add(bridge);
  const out = await s.d.docker(["network", "inspect", "--format", "{{json .}}", "n1"]);
  const network = JSON.parse(out.stdout);
  assert.deepEqual([network.Driver, network.IPAM.Driver], [s.plugin, ipam]);
  const [config, ...more] = network.IPAM.Config as { Subnet: string; Gateway?: string }[];
  assert.ok(config && more.length === 0, `not one IPAM config: ${out.stdout}`);
  // dockerd 20.10 shows the gateway only without --subnet or with --gateway; both IPAMs (Berth's
  // lowest free, Docker's default) give the pool's first address.
  const gateway = nth(config.Subnet, 1);
  assert.ok([undefined, gateway].includes(config.Gateway), `gateway ${config.Gateway}`);
  return { subnet: config.Subnet, gateway, bridge };
}

async function assertBackToStart(s: Story): Promise<void> {
  const now = await snapshot(s.d, s.bridges);
  const berthLinks = (x: Snapshot) => x.links.filter((name) => name.startsWith("bth"));
  assert.deepEqual(berthLinks(now), berthLinks(s.start), "bth* links left on the host");
  assert.deepEqual(now, s.start, "host links, networks or containers differ from the start");
}

async function networkStory(s: Story, variant: Variant): Promise<void> {
  const { t, d } = s;
  const ipam = variant.ipam === "plugin" ? s.plugin : "default";
  let net = { subnet: "", gateway: "", bridge: "" };
  let a = { IPAddress: "", IPPrefixLen: 0, Gateway: "", EndpointID: "" };
  const aVeth = () => `bthh${a.EndpointID.slice(0, 11)}`;
  await step(t, "network create makes a bridge that carries the gateway", async () => {
    net = await createNetwork(s, ipam, variant.subnet);
    assert.equal(net.subnet, variant.subnet ?? net.subnet);
    assert.ok(inBerthRange(net.subnet), `subnet ${net.subnet} is outside 198.18.0.0/15`);
    assert.match(net.subnet, /\.0\/24$/);
    assert.deepEqual(await ipv4Of(net.bridge), [`${net.gateway}/24`], `bridge ${net.bridge}`);
  });

  await step(t, "box-a gets .2 and only lo and eth0; a new container pings it", async () => {
    await d.docker(["run", "-d", "--name", "box-a", "--network", "n1", d.image, "sleep", "1000"]);
    a = await attachment(d, "box-a");
    assert.equal(a.IPAddress, nth(net.subnet, 2));
    assert.deepEqual([a.IPPrefixLen, a.Gateway], [24, net.gateway]);
    assert.equal((await hostLink(aVeth()))?.master, net.bridge, "box-a's veth is off the bridge");
    // DisableGatewayService in Join's reply is what keeps a docker_gwbridge eth1 away.
    assert.deepEqual(await linksIn(d, "box-a"), ["eth0", "lo"]);
    const routes = await shIn(d, "box-a", "ip route");
    assert.match(routes, new RegExp(`^default via ${escaped(net.gateway)} dev eth0`, "m"));
    assert.deepEqual(await assertPings(d, "--new", a.IPAddress), ["eth0", "lo"]);
  });

  await step(t, "box-b on none is connected to n1, pings box-a, is disconnected", async () => {
    await d.docker(["run", "-d", "--name", "box-b", "--network", "none", d.image, "sleep", "1000"]);
    // dockerd refuses to connect a container on `none` to another network ("cannot be connected
    // to multiple networks with one of the networks in private (none) mode"): leave none first.
    await d.docker(["network", "disconnect", "none", "box-b"]);
    await d.docker(["network", "connect", "n1", "box-b"]);
    const b = await attachment(d, "box-b");
    // Berth hands out the lowest free address: .3 again, released when the pinger stopped.
    if (variant.ipam === "plugin") assert.equal(b.IPAddress, nth(net.subnet, 3));
    assert.ok(b.IPAddress.startsWith(nth(net.subnet, 0).slice(0, -1)), `box-b: ${b.IPAddress}`);
    assert.deepEqual(await assertPings(d, "box-b", a.IPAddress), ["eth0", "lo"]);
    await d.docker(["network", "disconnect", "n1", "box-b"]);
    assert.deepEqual(await linksIn(d, "box-b"), ["lo"]);
    assert.equal(await hostLink(`bthh${b.EndpointID.slice(0, 11)}`), undefined, "box-b's veth");
  });

  await step(t, "after kill -9 and restart, box-a keeps its address and link", async () => {
    await s.restartBerth();
    assert.deepEqual(await attachment(d, "box-a"), a);
    const inside = await shIn(d, "box-a", "ip -o addr show dev eth0");
    assert.match(inside, new RegExp(`inet ${escaped(a.IPAddress)}/24 `));
    assert.equal((await hostLink(aVeth()))?.master, net.bridge, "box-a's veth is off the bridge");
    assert.deepEqual(await ipv4Of(net.bridge), [`${net.gateway}/24`], `bridge ${net.bridge}`);
    assert.deepEqual(await assertPings(d, "--new", a.IPAddress), ["eth0", "lo"]);
  });

  await step(t, "stop, rm and network rm leave nothing behind", async () => {
    await d.docker(["stop", "-t", "1", "box-a"]);
    await d.docker(["rm", "box-a"]);
    await d.docker(["rm", "-f", "box-b"]);
    await d.docker(["network", "rm", "n1"]);
    await assertBackToStart(s);
  });

  // Proves the pool and every address were released: Berth refuses an overlapping pool, and hands
  // out the lowest free address.
  await step(t, "the same subnet again is free and its first container gets .2", async () => {
    assert.equal((await createNetwork(s, ipam, net.subnet)).subnet, net.subnet);
    await d.docker(["run", "-d", "--name", "box-a", "--network", "n1", d.image, "sleep", "1000"]);
    assert.equal((await attachment(d, "box-a")).IPAddress, nth(net.subnet, 2));
    await d.docker(["rm", "-f", "box-a"]);
    await d.docker(["network", "rm", "n1"]);
    await assertBackToStart(s);
  });
}

function variants(): Variant[] {
  // Random third octets keep two runs on one host apart; 128 and up also keeps clear of the fixed
  // subnets the bench puts on this host (198.18.40.0/22, .50 and .51).
  const [x, y] = crypto.getRandomValues(new Uint8Array(2)).map((n) => 128 + (n % 127));
  return [
    { label: "Berth IPAM with --subnet", ipam: "plugin", subnet: `198.18.${x}.0/24` },
    { label: "Berth IPAM picks the pool", ipam: "plugin", subnet: undefined },
    { label: "default IPAM with --subnet", ipam: "default", subnet: `198.19.${y}.0/24` },
  ];
}

// Warnings and errors, but the ones every run of this harness has: containerd's start-up chatter,
// "IPv4 forwarding is disabled" (--ip-forward=false on purpose) and shim cleanup after exits.
function dockerdWarnings(d: Dockerd): string[] {
  return d.logTail(20_000).split("\n").filter((line) =>
    /level=(warning|error|fatal)/.test(line) &&
    !/containerd|snapshotter|cgroup blkio|IPv4 forwarding|shim disconnected|cleanup warnings/
      .test(line)
  );
}

// Errors, and warnings but those about another Berth's links (the host netns is shared).
function berthTrouble(berths: BerthProcess[], bridges: Set<string>): string[] {
  return berths.flatMap((berth) => berth.stderr().split("\n")).filter((line) => {
    const orphan = line.match(ORPHAN_WARNING_REGEXP)?.[1];
    return /\[(WARN|ERROR)\]/.test(line) && (orphan === undefined || bridges.has(orphan));
  });
}

const NAME = "berth serve is a network and IPAM driver whose links survive kill -9 of the plugin";
Deno.test({ name: NAME, ignore: requireOrSkip(NAME) }, async (t) => {
  const plugin = `berth-e2e-net-${crypto.randomUUID().slice(0, 8)}`;
  const socket = join(PLUGIN_DIR, `${plugin}.sock`);
  const linksAtStart = new Set((await hostLinks()).map((link) => link.ifname));
  const stateDir = await Deno.makeTempDir({ prefix: "berth-e2e-net-state-" });
  const berths: BerthProcess[] = [];
  const bridges = new Set<string>();
  let dockerd: Dockerd | undefined;
  async function startBerth(): Promise<void> {
    berths.push(spawnBerth(["serve", "--name", plugin, "--state-dir", stateDir]));
    await berths.at(-1)!.ready(socket);
  }
  async function restartBerth(): Promise<void> {
    berths.at(-1)!.kill("SIGKILL");
    assert.equal((await berths.at(-1)!.exited()).signal, "SIGKILL");
    await startBerth();
  }
  try {
    await Deno.mkdir(PLUGIN_DIR, { recursive: true });
    dockerd = await startDockerd({ log: (line) => log(`[dockerd] ${line}`) });
    await startBerth();
    const d = dockerd;
    const start = await snapshot(d, bridges);
    for (const variant of variants()) {
      await step(t, variant.label, async (inner) => {
        try {
          await networkStory({ t: inner, d, plugin, start, restartBerth, bridges }, variant);
        } catch (error) {
          log(`[dockerd warnings]\n${dockerdWarnings(d).join("\n")}`);
          throw error;
        }
      });
    }
    const trouble = dockerdWarnings(d).filter((line) => DRIVER_TROUBLE_REGEXP.test(line));
    assert.deepEqual(trouble, [], "dockerd logged trouble with the driver");
    assert.deepEqual(berthTrouble(berths, bridges), [], "Berth warned or failed");
  } finally {
    // dockerd first: it removes leftover containers while Berth can still answer their Leave.
    await dockerd?.stop();
    for (const berth of berths) {
      berth.kill("SIGKILL");
      await berth.exited();
      log(`[berth ${berth.child.pid} stderr]\n${berth.stderr().trimEnd()}`);
    }
    await Deno.remove(socket).catch(() => {});
    await Deno.remove(stateDir, { recursive: true });
    // What a failed run left: Berth-named links that were not there at the start and that no
    // other Berth's or Docker's bridge holds (deleting a veth end takes its peer along).
    const leftovers = ownLinkNames(await hostLinks(), bridges)
      .filter((name) => name.startsWith("bth") && !linksAtStart.has(name));
    for (const name of leftovers.reverse()) {
      log(`removing leftover link ${name}`);
      await ip("link", "del", "dev", name).catch((error) => log(String(error)));
    }
  }
});
