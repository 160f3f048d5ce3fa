// SIGKILL Berth after and inside every call dockerd makes from `docker network create` through a
// container's start and stop to `docker network rm`, restart it on the same state dir, let dockerd
// carry on (retry the call in flight, or roll back), and check that no link, address or pool leaks.
import assert from "node:assert/strict";
import { join } from "node:path";
import type { PoolContext } from "../machines/pool_machine.ts";
import { startBerth } from "../src/start_berth.ts";
import { bridgeName, vethNames } from "../src/backends/net_plumbing.ts";
import {
  type BerthChild,
  fileExists,
  type LinkState,
  linkStates,
  logAround,
  logSize,
  sendOnly,
  spawnInNetns,
  waitFor,
  writeIpShim,
} from "./helpers/_crash.ts";
import { ip, netns, skipUnlessNet } from "./helpers/netns.ts";
import { type Call, pluginClient } from "./helpers/plugin_socket.ts";
import { tempDir } from "./helpers/temp_dir.ts";

const ignore = skipUnlessNet(import.meta.url.split("/").pop()!);
const POOL = "198.18.7.0/24";
const GATEWAY = "198.18.7.1/24";
const ADDRESS = "198.18.7.2/24";
const hex = (seed: string) => seed.repeat(32).slice(0, 64);
const bare = (cidr: string | null) => String(cidr).split("/")[0]!;
const PORTS = { "com.docker.network.endpoint.exposedports": [], "com.docker.network.portmap": [] };

/** What dockerd knows at a point of the flow, and what the test found wrong (first seen after). */
type Flow = {
  net: string;
  ep: string;
  host: string;
  sandbox: string;
  poolId: string | null;
  gateway: string | null;
  address: string | null;
  srcName: string | null;
  /** dockerd believes the network's bridge, or the endpoint's veth pair, exists. */
  network: boolean;
  joined: boolean;
  inSandbox: boolean;
  /** The call dockerd resent after the restart, if any. */
  resent: string | null;
  problems: Map<string, string>;
};

type Body = Record<string, unknown>;

/** One step of the flow: a plugin call, or libnetwork's own work with the interface. */
type Step = {
  name: string;
  method?: string;
  body?: (flow: Flow) => unknown;
  answered?: (flow: Flow, reply: Body) => void;
  /** What dockerd believes once the call returned, whatever the answer. */
  settled?: (flow: Flow) => void;
  local?: (flow: Flow) => Promise<void>;
  /** Berth or libnetwork may change links here: check them after it (other steps cannot). */
  links?: true;
  /** On an error dockerd logs and carries on ("ignore"), or runs these steps instead of the rest. */
  onFailure: "ignore" | readonly string[];
};

const NETWORK_RM = ["ReleaseAddress(gateway)", "ReleasePool", "DeleteNetwork"];

/** The flow in the order dockerd sends it (tests/fixtures/dockerd-20.10 20, 21, 26, 29). */
const STEPS: readonly Step[] = [
  {
    name: "RequestPool",
    method: "IpamDriver.RequestPool",
    body: () => ({ AddressSpace: "BerthLocal", Pool: POOL, SubPool: "", Options: {}, V6: false }),
    answered(flow, reply) {
      flow.poolId = String(reply.PoolID);
      expectAnswer(flow, "RequestPool", reply.Pool, POOL);
    },
    onFailure: [],
  },
  {
    name: "RequestAddress(gateway)",
    method: "IpamDriver.RequestAddress",
    body: (flow) => ({
      PoolID: flow.poolId,
      Address: "",
      Options: { RequestAddressType: "com.docker.network.gateway" },
    }),
    answered(flow, reply) {
      flow.gateway = String(reply.Address);
      expectAnswer(flow, "RequestAddress(gateway)", reply.Address, GATEWAY);
    },
    onFailure: ["ReleasePool"],
  },
  {
    name: "CreateNetwork",
    links: true,
    method: "NetworkDriver.CreateNetwork",
    body: (flow) => ({
      NetworkID: flow.net,
      Options: { "com.docker.network.enable_ipv6": false, "com.docker.network.generic": {} },
      IPv4Data: [{ AddressSpace: "BerthLocal", Gateway: flow.gateway, Pool: POOL }],
      IPv6Data: [],
    }),
    answered: (flow) => void (flow.network = true),
    onFailure: ["ReleaseAddress(gateway)", "ReleasePool"],
  },
  {
    name: "RequestAddress(endpoint)",
    method: "IpamDriver.RequestAddress",
    body: (flow) => ({ PoolID: flow.poolId, Address: "", Options: null }),
    answered(flow, reply) {
      flow.address = String(reply.Address);
      // Known limit: dockerd 20.10 sends nothing that ties a resent RequestAddress to the lost
      // one, so Berth cannot tell it from a second container's: the resend gets .3, and .2 stays
      // held until ReleasePool (the final cycle checks that it then comes back).
      const lost = flow.resent === "RequestAddress(endpoint)" && reply.Address === "198.18.7.3/24";
      if (!lost) expectAnswer(flow, "RequestAddress(endpoint)", reply.Address, ADDRESS);
    },
    onFailure: NETWORK_RM,
  },
  {
    name: "CreateEndpoint",
    method: "NetworkDriver.CreateEndpoint",
    body: (flow) => ({
      NetworkID: flow.net,
      EndpointID: flow.ep,
      Interface: { Address: flow.address, AddressIPv6: "", MacAddress: "" },
      Options: PORTS,
    }),
    onFailure: ["ReleaseAddress(endpoint)", ...NETWORK_RM],
  },
  {
    name: "Join",
    links: true,
    method: "NetworkDriver.Join",
    body: (flow) => ({
      NetworkID: flow.net,
      EndpointID: flow.ep,
      SandboxKey: `/var/run/docker/netns/${flow.ep.slice(0, 12)}`,
      Options: PORTS,
    }),
    answered(flow, reply) {
      const names = reply.InterfaceName as { SrcName: string } | undefined;
      flow.srcName = names?.SrcName ?? null;
      flow.joined = true;
      expectAnswer(flow, "Join SrcName", flow.srcName, vethNames(flow.ep).peer);
      expectAnswer(flow, "Join Gateway", reply.Gateway, bare(flow.gateway));
    },
    onFailure: ["DeleteEndpoint", "ReleaseAddress(endpoint)", ...NETWORK_RM],
  },
  { name: "move into the sandbox", local: moveIn, links: true, onFailure: "ignore" },
  {
    name: "Leave",
    method: "NetworkDriver.Leave",
    body: (flow) => ({ NetworkID: flow.net, EndpointID: flow.ep }),
    onFailure: "ignore",
  },
  { name: "move back", local: moveBack, links: true, onFailure: "ignore" },
  {
    name: "DeleteEndpoint",
    links: true,
    method: "NetworkDriver.DeleteEndpoint",
    body: (flow) => ({ NetworkID: flow.net, EndpointID: flow.ep }),
    settled: (flow) => void (flow.joined = false),
    onFailure: "ignore",
  },
  {
    name: "ReleaseAddress(endpoint)",
    method: "IpamDriver.ReleaseAddress",
    body: (flow) => ({ PoolID: flow.poolId, Address: bare(flow.address) }),
    onFailure: "ignore",
  },
  {
    name: "ReleaseAddress(gateway)",
    method: "IpamDriver.ReleaseAddress",
    body: (flow) => ({ PoolID: flow.poolId, Address: bare(flow.gateway) }),
    onFailure: "ignore",
  },
  {
    name: "ReleasePool",
    method: "IpamDriver.ReleasePool",
    body: (flow) => ({ PoolID: flow.poolId }),
    onFailure: "ignore",
  },
  {
    name: "DeleteNetwork",
    links: true,
    method: "NetworkDriver.DeleteNetwork",
    body: (flow) => ({ NetworkID: flow.net }),
    settled: (flow) => void (flow.network = false),
    // The network stays marked for deletion; dockerd sends DeleteNetwork again at its next start.
    onFailure: ["DeleteNetwork"],
  },
];

const ALL = STEPS.map((step) => step.name);

function stepNamed(name: string): Step {
  return STEPS.find((step) => step.name === name)!;
}

function newFlow(host: string, sandbox: string, seed: string): Flow {
  return {
    net: hex(`a${seed}`),
    ep: hex(`b${seed}`),
    host,
    sandbox,
    poolId: null,
    gateway: null,
    address: null,
    srcName: null,
    network: false,
    joined: false,
    inSandbox: false,
    resent: null,
    problems: new Map(),
  };
}

function problem(flow: Flow, text: string, after: string) {
  if (!flow.problems.has(text)) flow.problems.set(text, after);
}

// dockerd holds nothing else of this pool, so any other answer means an earlier one leaked.
function expectAnswer(flow: Flow, what: string, actual: unknown, expected: string) {
  if (actual !== expected) {
    problem(flow, `${what} answered ${JSON.stringify(actual)}, expected "${expected}"`, what);
  }
}

/** What libnetwork does with SrcName after Join: into the sandbox, renamed, addressed, up. */
async function moveIn(flow: Flow) {
  const name = flow.srcName!;
  await ip("-n", flow.host, "link", "set", name, "netns", flow.sandbox);
  await ip("-n", flow.sandbox, "link", "set", name, "name", "eth0");
  await ip("-n", flow.sandbox, "addr", "add", flow.address!, "dev", "eth0");
  await ip("-n", flow.sandbox, "link", "set", "eth0", "up");
  flow.inSandbox = true;
}

/** What libnetwork does after Leave: down, its old name back, into the host netns. */
async function moveBack(flow: Flow) {
  await ip("-n", flow.sandbox, "link", "set", "eth0", "down");
  await ip("-n", flow.sandbox, "link", "set", "eth0", "name", flow.srcName!);
  await ip("-n", flow.sandbox, "link", "set", flow.srcName!, "netns", flow.host);
  flow.inSandbox = false;
}

/** Runs one step; false when the plugin answered an error. */
async function perform(call: Call, flow: Flow, step: Step): Promise<boolean> {
  if (step.local) {
    await step.local(flow);
    return true;
  }
  const reply = await call(step.method!, step.body!(flow));
  step.settled?.(flow);
  const body = (reply.body ?? {}) as Body;
  if (reply.status === 200 && body.Err === undefined && body.Error === undefined) {
    step.answered?.(flow, body);
    return true;
  }
  problem(flow, `${step.name} answered ${reply.status} ${reply.text.trim()}`, step.name);
  return false;
}

/** Runs `names` as dockerd would: a failure it does not ignore replaces the rest by its rollback. */
async function carryOn(call: Call, flow: Flow, names: readonly string[], rollingBack = false) {
  let plan = names;
  for (let index = 0; index < plan.length; index++) {
    const step = stepNamed(plan[index]!);
    const ok = await perform(call, flow, step);
    if (step.links) await checkLinks(flow, step.name);
    if (!ok && !rollingBack && step.onFailure !== "ignore") {
      [plan, index, rollingBack] = [step.onFailure, -1, true];
    }
  }
}

/** The host netns holds exactly what dockerd believes exists, set up right; so does the sandbox. */
async function checkLinks(flow: Flow, after: string) {
  const bridge = bridgeName(flow.net);
  const { host, peer } = vethNames(flow.ep);
  const want = new Map<string, (link: LinkState) => string | null>([["lo", () => null]]);
  if (flow.network) want.set(bridge, bridgeIsSet(flow.gateway!));
  if (flow.joined) want.set(host, vethIsSet(bridge));
  if (flow.joined && !flow.inSandbox) want.set(peer, () => null);
  const links = await linkStates(flow.host);
  for (const link of links) {
    const check = want.get(link.name);
    const wrong = check ? check(link) : `leaked ${link.kind || "link"} ${link.name} in the host`;
    if (wrong) problem(flow, wrong, after);
  }
  for (const name of want.keys()) {
    if (!links.some((link) => link.name === name)) problem(flow, `${name} is missing`, after);
  }
  const inside = (await linkStates(flow.sandbox)).map((link) => link.name).sort().join(",");
  const expected = flow.inSandbox ? "eth0,lo" : "lo";
  if (inside !== expected) problem(flow, `sandbox holds ${inside}, expected ${expected}`, after);
}

function shown(link: LinkState): string {
  return `${link.up ? "up" : "down"}, addresses [${link.addresses.join(" ")}], on ${link.master}`;
}

function bridgeIsSet(gateway: string) {
  return (link: LinkState) =>
    link.up && link.addresses.includes(gateway)
      ? null
      : `bridge ${link.name} is ${shown(link)}; expected up with ${gateway}`;
}

function vethIsSet(bridge: string) {
  return (link: LinkState) =>
    link.up && link.master === bridge
      ? null
      : `veth ${link.name} is ${shown(link)}; expected up on ${bridge}`;
}

/**
 * Where SIGKILL lands: after the answer, or inside the call, whose answer never reaches dockerd.
 * "sent" kills right after the request is written, so Berth may or may not have recorded it (a
 * race by nature); "logged" waits for the call's first record; "inside" for an `ip` command.
 */
type Cut =
  | { kind: "after" }
  | { kind: "sent" }
  | { kind: "logged" }
  | { kind: "inside"; when: "before" | "after"; pause: string; what: string };

type Scenario = { name: string; step: number; cut: Cut; giveUp?: boolean };

// Inside an effect: the `ip` shim parks Berth just before or just after the named command.
// `giveUp` adds the case where dockerd gives up on the call instead of resending it.
const INSIDE = [
  ["CreateNetwork", "before", "link add name bthb", "bridge not made yet", true],
  ["CreateNetwork", "after", "link add name bthb", "bridge made, not addressed or up", true],
  ["CreateNetwork", "after", "addr replace", "bridge addressed, not up", false],
  ["Join", "before", "link add name bthh", "veth pair not made yet", true],
  ["Join", "after", "link add name bthh", "veth pair made", true],
  ["DeleteEndpoint", "before", "link del dev bthh", "veth pair not deleted yet", true],
  ["DeleteEndpoint", "after", "link del dev bthh", "veth pair deleted", false],
  ["DeleteNetwork", "before", "link del dev bthb", "bridge not deleted yet", true],
  ["DeleteNetwork", "after", "link del dev bthb", "bridge deleted", false],
] as const;

/**
 * Every cut point: after each step; during each call, sent or logged, retried by dockerd or given
 * up on (Berth stayed down longer than dockerd's 15 s of retries); inside effects.
 */
function scenarios(): Scenario[] {
  const list: Scenario[] = [];
  for (const [step, { name, method }] of STEPS.entries()) {
    list.push({ name: `after ${name}${method ? " answered" : ""}`, step, cut: { kind: "after" } });
    if (!method) continue;
    list.push({ name: `during ${name}, request sent`, step, cut: { kind: "sent" } });
    list.push({ name: `during ${name}, its record logged`, step, cut: { kind: "logged" } });
    const cut = { kind: "logged" } as const;
    list.push({ name: `dockerd gives up on ${name}, its record logged`, step, cut, giveUp: true });
  }
  for (const [name, when, pause, what, giveUp] of INSIDE) {
    const [step, cut] = [ALL.indexOf(name), { kind: "inside", when, pause, what }] as const;
    list.push({ name: `inside ${name}, ${what}`, step, cut });
    if (giveUp) list.push({ name: `dockerd gives up on ${name}, ${what}`, step, cut, giveUp });
  }
  return list;
}

type Paths = { socket: string; stateDir: string };

/** Runs the flow up to the cut on a fresh Berth and SIGKILLs it there; returns the log size then. */
async function runUntilKilled(scenario: Scenario, flow: Flow, paths: Paths, dir: string) {
  const { cut } = scenario;
  const mark = join(dir, "mark");
  const env: Record<string, string> = cut.kind !== "inside" ? {} : {
    PATH: `${join(dir, "bin")}:${Deno.env.get("PATH")}`,
    CRASH_PAUSE: ` ${cut.pause}`,
    CRASH_WHEN: cut.when,
    CRASH_MARK: mark,
  };
  if (cut.kind === "inside") await writeIpShim(dir);
  await using berth = spawnInNetns(flow.host, { ...paths, env });
  await berth.ready();
  using client = pluginClient(paths.socket);
  await carryOn(client.call, flow, ALL.slice(0, scenario.step + (cut.kind === "after" ? 1 : 0)));
  if (cut.kind === "after") berth.kill("SIGKILL");
  else await killDuring(berth, STEPS[scenario.step]!, flow, cut, paths, mark);
  assert.equal((await berth.exited()).signal, "SIGKILL");
  if (cut.kind === "inside") {
    await Deno.remove(mark); // lets the parked `ip` shim end: Berth is gone, nothing follows it
    await waitFor(() => fileExists(`${mark}.done`), "the ip shim to end");
  }
  return logSize(paths.stateDir);
}

/** Sends the step's request as dockerd does and SIGKILLs Berth before dockerd reads an answer. */
async function killDuring(
  berth: BerthChild,
  step: Step,
  flow: Flow,
  cut: Cut,
  paths: Paths,
  mark: string,
) {
  const size = logSize(paths.stateDir);
  const conn = await sendOnly(paths.socket, step.method!, step.body!(flow));
  try {
    if (cut.kind === "logged") {
      await waitFor(() => logSize(paths.stateDir) > size, `a record of ${step.name}`);
    }
    if (cut.kind === "inside") await waitFor(() => fileExists(mark), `ip ${cut.pause}`);
    berth.kill("SIGKILL");
    await berth.exited();
  } finally {
    conn.close();
  }
}

/** What dockerd sends once Berth is back: the rest, the call in flight again, or its rollback. */
function planAfterRestart(scenario: Scenario, flow: Flow): [readonly string[], boolean] {
  const step = STEPS[scenario.step]!;
  const rest = ALL.slice(scenario.step + 1);
  if (scenario.cut.kind === "after") return [rest, false];
  if (!scenario.giveUp) {
    flow.resent = step.name;
    return [[step.name, ...rest], false]; // the call in flight, resent once
  }
  step.settled?.(flow);
  return step.onFailure === "ignore" ? [rest, false] : [step.onFailure, true];
}

/** Restarts Berth and lets dockerd carry on; returns what the restart said on stderr. */
async function restartAndCarryOn(scenario: Scenario, flow: Flow, paths: Paths) {
  await using berth = spawnInNetns(flow.host, paths);
  await berth.ready();
  {
    using client = pluginClient(paths.socket);
    const [plan, rollingBack] = planAfterRestart(scenario, flow);
    await carryOn(client.call, flow, plan, rollingBack);
  }
  berth.kill("SIGTERM");
  const status = await berth.exited();
  if (status.code !== 0) problem(flow, `the restarted Berth exited with ${status.code}`, "SIGTERM");
  const said = berth.stderr().split("\n").filter((line) => /\[(WARN|ERROR)\]/.test(line));
  for (const line of said.filter((line) => line.includes("[ERROR]"))) {
    problem(flow, `the restarted Berth said ${line}`, "the restart");
  }
  return said.length > 0 ? said.join("\n") : "  (no warning)";
}

/**
 * Starts Berth in this process on the same state dir: the log must replay with nothing to
 * reconcile and no actor left, and a new cycle on the same subnet must get .1 and .2 again.
 */
async function replayAndCycleAgain(
  socket: string,
  stateDir: string,
  flow: Flow,
  unclaimedPoolOk = false,
) {
  const said: string[] = [];
  const problems: string[] = [];
  const berth = await startBerth({
    socket,
    stateDir,
    netns: flow.host,
    warn: (message) => said.push(message),
    report: (message) => said.push(message),
  });
  try {
    for (const kind of ["network", "endpoint", "pool"] as const) {
      for (const [id, snapshot] of berth.engine.list(kind)) {
        const addresses = kind === "pool"
          ? [...(snapshot.context as PoolContext).addresses].map(([ip, role]) => `${ip}:${role}`)
          : [];
        // Known limit: a pool whose RequestPool dockerd gave up on stays until the same request
        // comes again (an identical RequestPool is answered with it); the new cycle below asks
        // for the same subnet and must get it, and then releases it.
        if (kind === "pool" && unclaimedPoolOk && addresses.length === 0) continue;
        const held = kind === "pool" ? ` holding ${JSON.stringify(addresses)}` : "";
        problems.push(`replaying the log again: ${id} is left, ${String(snapshot.value)}${held}`);
      }
    }
    using client = pluginClient(socket);
    await carryOn(client.call, flow, ALL);
    await checkLinks(flow, "the new cycle");
  } finally {
    await berth.stop();
  }
  return [
    ...said.map((line) => `replaying the log again said: ${line}`),
    ...problems,
    ...describe(flow).map((line) => `new cycle: ${line}`),
  ];
}

function describe(flow: Flow): string[] {
  return [...flow.problems].map(([text, after]) => `${text} (first seen after ${after})`);
}

async function runScenario(scenario: Scenario) {
  await using dir = await tempDir("berth-crash-");
  await using host = await netns("crash");
  await using sandbox = await netns("sbox");
  const paths = { socket: join(dir.path, "b.sock"), stateDir: join(dir.path, "state") };
  const flow = newFlow(host.name, sandbox.name, "1");
  const killedAt = await runUntilKilled(scenario, flow, paths, dir.path);
  assert.deepEqual(describe(flow), [], "the flow up to the cut went wrong");
  const restart = await restartAndCarryOn(scenario, flow, paths);
  await checkLinks(flow, "the end");
  const around = await logAround(paths.stateDir, killedAt);
  const again = newFlow(host.name, sandbox.name, "2");
  const problems = [
    ...describe(flow),
    ...await replayAndCycleAgain(
      join(dir.path, "again.sock"),
      paths.stateDir,
      again,
      scenario.giveUp === true && STEPS[scenario.step]!.name === "RequestPool",
    ),
  ];
  if (problems.length > 0) {
    assert.fail(
      `${problems.join("\n")}\nlog around the SIGKILL:\n${around}\nthe restart said:\n${restart}`,
    );
  }
}

Deno.test({
  name: "network flow: SIGKILL anywhere, restart, dockerd carries on, nothing leaks",
  ignore,
  async fn(t) {
    for (const scenario of scenarios()) {
      await t.step(scenario.name, () => runScenario(scenario));
    }
  },
});
