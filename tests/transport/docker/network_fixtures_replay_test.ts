// Replays the NetworkDriver and IpamDriver traffic a real dockerd 20.10 sent (scenarios 20–34 and
// 40 of tests/fixtures/dockerd-20.10) in recorded order, against a Berth whose bridges and veths
// live in a namespace of the test's own, and checks each answer means what libnetwork needs.
//
// Where Berth's answers differ from the recorder's (whose answers are its own, not Docker's rules):
// - names: the recorder's address space `RecorderLocal` and pool ids `RecorderLocal/<cidr>`; Berth's
//   are `BerthLocal` and the CIDR itself. Requests are rewritten to Berth's names and to the
//   addresses Berth handed out (30: the recorder chose 198.19.0.0/24, Berth 198.18.0.0/24).
// - options: the recorder took any `-o` / `--ipam-opt`: `gateway=yes` (23, 34), `colour=green` (23),
//   and its `fail=…` injections (31, 32, 33). Berth refuses each by name, so those networks and
//   pools never exist, and every later request naming them gets an error that names them.
//   DeleteEndpoint and DeleteNetwork of them succeed: libnetwork ignores the one, may repeat the other.
// - subnets: the recorder refused 198.20.0.0/24 (outside 198.18.0.0/15: 31, 32a, 32b); Berth grants
//   any IPv4 subnet asked for, so the replay hands the pool back at once.
// - IPv6 (31): both refuse; the recorder with 200 {"Err"}, which libnetwork's IPAM client reads as
//   success; Berth with 400 and `Error`. The 200 {"Error"} / 500 {"Error"} styles of 32 and 33 are
//   the recorder's experiments; Berth always refuses with 4xx/5xx and `Err` (IPAM: `Error` too).
// - Join: the recorder answered DisableGatewayService, or only a Gateway with `gateway=yes`; Berth
//   answers both, its bridge carrying the gateway. EndpointOperInfo: the recorder's `Value` named its
//   veth, Berth's is empty; libnetwork ignores it for remote drivers.
import assert from "node:assert/strict";
import { contains, formatIp, overlaps, parseCidr, parseIp } from "../../../src/backends/ipam.ts";
import { bridgeName, vethNames } from "../../../src/backends/net_plumbing.ts";
import { ip, links, type Netns, netns, skipUnlessNet } from "../../helpers/netns.ts";
import {
  type Call,
  type InProcessBerth,
  type Reply,
  startInProcess,
} from "../../helpers/plugin_socket.ts";
import { tempDir } from "../../helpers/temp_dir.ts";

type Body = Record<string, unknown>;
type Recorded = { path: string; rawBody: string; response: { status: number; body: Body | null } };
type Endpoint = {
  networkId: string;
  address: string;
  srcName?: string;
  sandbox?: Netns;
  ifname?: string;
};
/** What Berth holds, as the replay saw it answer; every expectation is derived from it. */
type State = {
  host: string;
  /** Berth's LocalDefaultAddressSpace, which dockerd sends where the recorder's name was. */
  space: string;
  /** Recorded PoolID, subnet or IP → Berth's, for the later requests that name it. */
  renames: Map<string, string>;
  /** Berth's PoolID → the addresses it has handed out there. */
  pools: Map<string, Set<number>>;
  /** Networks Berth created → their gateway (bare IP). */
  networks: Map<string, string>;
  endpoints: Map<string, Endpoint>;
  /** SandboxKey → the namespace standing in for that container. */
  sandboxes: Map<string, Netns>;
};
type Answer = {
  call: Call;
  reply: Reply;
  body: Body;
  sent: Body;
  recorded: Recorded;
  where: string;
};

const FIXTURES = new URL("../../fixtures/dockerd-20.10/", import.meta.url);
// Recorded ids: containers n1 and n2 of 21; k1 and k2 of 40a on network netk.
const N1 = "89dcf49cff13532d1a1c2db4a8159cec3fb2e41d49dad187208e2c20b1b2e64b";
const N2 = "0c39fbf6de0d9888bb7b3691b7718371c78c10b659e94823d4b4e158a0b0af0e";
const K1 = "1ae0b12bbd16669a7581673b97641e63c26d82bb76f653542a004b1d54fdb527";
const K2 = "2bc3b097d813aa1057d3ec8121400454bf4fcc49ba9a56c80d73135ab67fe59b";
/**
 * In recorded order. 22, 27, 40b and 40c recorded no traffic: "ping" stands for 22, "kill" for
 * 40b/40c; "restart" is where 40d restarted the plugin, inside dockerd's retry of k1's Leave.
 */
const SCENARIOS = [
  "01-first-contact-volume-create", // its handshake only: Activate and the capability calls
  "20-network-create",
  "21-run-two-containers-on-network",
  "ping",
  "23-network-create-gateway-variant",
  "24-network-connect",
  "25-network-disconnect",
  "26-network-container-stop-start",
  "28-network-container-rm-force",
  "29-network-rm",
  "30-network-create-no-subnet",
  "31-network-errors",
  "32a-ipam-error-key-Error-200",
  "32b-ipam-error-Err-500",
  "33a-volume-network-error-key-Error-200",
  "33b-volume-network-error-key-Error-500",
  "34-endpoint-options",
  "40a-kill9-setup",
  "kill",
  "restart",
  "40d-kill9-restart-during-retry",
  "40e-after-restart",
];
const BERTH_RANGE = parseCidr("198.18.0.0/15");
const KNOWN_NETWORK_OPTIONS = new Set(["mtu", "bridge"]);
const MAC_REGEXP = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;

async function load(name: string): Promise<Recorded[]> {
  const all: Recorded[] = JSON.parse(await Deno.readTextFile(new URL(`${name}.json`, FIXTURES)));
  // VolumeDriver calls (33a/33b, vplain in 40) are fixtures_replay_test.ts's.
  return all.filter((request) => /^\/(NetworkDriver|IpamDriver|Plugin)\./.test(request.path));
}

/** The request as dockerd would send it to Berth: Berth's address space, pool ids, addresses. */
function rewrite(state: State, value: unknown, key = ""): unknown {
  if (Array.isArray(value)) return value.map((item) => rewrite(state, item));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rewrite(state, v, k)]));
  }
  if (typeof value !== "string") return value;
  if (key === "AddressSpace") return state.space;
  // A pool Berth never granted is named by its subnet, Berth's scheme, so Berth can say which.
  if (key === "PoolID") return state.renames.get(value) ?? value.replace(/^[^/]*\//, "");
  const [address = "", length] = value.split("/");
  const renamed = state.renames.get(value) ?? state.renames.get(address);
  if (renamed === undefined) return value;
  return state.renames.has(value) || length === undefined ? renamed : `${renamed}/${length}`;
}

function assertOk(a: Answer, expected?: Body) {
  assert.equal(a.reply.status, 200, `${a.where}: ${a.reply.text}`);
  assert.ok(a.body.Err === undefined && a.body.Error === undefined, a.where);
  if (expected) assert.deepEqual(a.body, expected, a.where);
}

/** A refusal dockerd reports cleanly: 4xx/5xx, `Err` naming `subject`, for IPAM also `Error`. */
function assertRefused(a: Answer, subject: string, ipam: boolean) {
  assert.ok(a.reply.status >= 400 && a.reply.status < 600, `${a.where}: refused: ${a.reply.text}`);
  assert.ok(String(a.body.Err).includes(subject), `${a.where}: ${a.reply.text} names ${subject}`);
  // libnetwork's IPAM client reads `Error`; on a 200, `Err` alone would pass for success.
  if (ipam) assert.equal(a.body.Error, a.body.Err, a.where);
}

async function requestPool(state: State, a: Answer) {
  const { Pool, V6, Options } = a.sent as { Pool: string; V6: boolean; Options: Body | null };
  const option = Object.keys(Options ?? {})[0];
  if (V6) return assertRefused(a, "IPv6", true);
  if (option !== undefined) return assertRefused(a, `"${option}"`, true);
  assertOk(a);
  const granted = String(a.body.Pool);
  const cidr = parseCidr(granted);
  assert.equal(a.body.PoolID, granted, "Berth's pool id is the subnet");
  if (Pool !== "") assert.equal(granted, Pool, `${a.where}: the subnet asked for`);
  else assert.ok(contains(BERTH_RANGE, cidr.network) && cidr.prefix >= BERTH_RANGE.prefix);
  for (const held of state.pools.keys()) assert.ok(!overlaps(parseCidr(held), cidr), held);
  const recorded = a.recorded.response.body ?? {};
  if (typeof recorded.PoolID === "string") {
    state.renames.set(recorded.PoolID, granted).set(String(recorded.Pool), granted);
    state.pools.set(granted, new Set());
    return;
  }
  // The recorder refused it; what dockerd sends after a granted pool (gateway, CreateNetwork, a
  // later removal) was never recorded, so the pool goes back at once, as that removal would.
  const released = await a.call("IpamDriver.ReleasePool", { PoolID: granted });
  assert.deepEqual([released.status, released.body], [200, {}]);
}

function requestAddress(state: State, a: Answer) {
  const { PoolID, Address, Options } = a.sent as { PoolID: string; Address: string; Options: Body };
  const held = state.pools.get(PoolID);
  if (!held) return assertRefused(a, `"${PoolID}"`, true);
  assertOk(a);
  const pool = parseCidr(PoolID);
  let expected = Address === "" ? pool.network + 1 : parseIp(Address);
  // The gateway is asked for first and gets .1; then each endpoint the lowest address not out.
  if (Options?.RequestAddressType === "com.docker.network.gateway") {
    assert.equal(held.size, 0, `${a.where}: the gateway is the pool's first address`);
  }
  while (Address === "" && held.has(expected)) expected++;
  assert.equal(a.body.Address, `${formatIp(expected)}/${pool.prefix}`, a.where);
  held.add(expected);
  const recorded = a.recorded.response.body?.Address;
  if (typeof recorded === "string") state.renames.set(recorded.split("/")[0]!, formatIp(expected));
}

function releaseAddress(state: State, a: Answer) {
  const { PoolID, Address } = a.sent as { PoolID: string; Address: string };
  const held = state.pools.get(PoolID);
  // Releases are idempotent (dockerd resends one whose answer a crash lost): an unknown pool or
  // address is already released.
  if (held) assert.ok(held.delete(parseIp(Address)), `${a.where}: a bare IP that Berth handed out`);
  assertOk(a, {});
}

function releasePool(state: State, a: Answer) {
  state.pools.delete(String(a.sent.PoolID));
  assertOk(a, {}); // idempotent, as releaseAddress
}

async function createNetwork(state: State, a: Answer) {
  const { NetworkID, Options, IPv4Data } = a.sent as {
    NetworkID: string;
    Options: Record<string, Body>;
    IPv4Data: Body[];
  };
  const generic = Object.keys(Options["com.docker.network.generic"] ?? {});
  const unknown = generic.find((key) => !KNOWN_NETWORK_OPTIONS.has(key));
  if (unknown !== undefined) return assertRefused(a, `unknown option "${unknown}"`, false);
  assertOk(a, {});
  const gateway = String(IPv4Data[0]?.Gateway);
  const shown = await ip("-n", state.host, "addr", "show", "dev", bridgeName(NetworkID));
  assert.ok(shown.includes(`inet ${gateway} `), `the bridge carries ${gateway}: ${shown}`);
  state.networks.set(NetworkID, gateway.split("/")[0]!);
}

function deleteNetwork(state: State, a: Answer) {
  const id = String(a.sent.NetworkID);
  const left = [...state.endpoints.values()].filter((endpoint) => endpoint.networkId === id);
  // dockerd sends DeleteNetwork only once it holds no endpoint there (40e: k2's Leave and
  // DeleteEndpoint were swallowed by 40c's outage, and its interface is back in the host
  // namespace). Berth removes such abandoned endpoints with their veth, then the bridge.
  assertOk(a, {});
  for (const [endpointId, endpoint] of state.endpoints) {
    if (left.includes(endpoint)) state.endpoints.delete(endpointId);
  }
  state.networks.delete(id);
}

function createEndpoint(state: State, a: Answer) {
  const { NetworkID = "", EndpointID = "" } = a.sent as Record<string, string>;
  const sentInterface = a.sent.Interface as Body;
  if (!state.networks.has(NetworkID)) return assertRefused(a, NetworkID.slice(0, 12), false);
  assertOk(a);
  // libnetwork refuses a reply that changes what it sent: no Address, a MAC only if it sent none.
  const iface = a.body.Interface as Body | null | undefined;
  assert.ok(iface == null || (!iface.Address && !iface.AddressIPv6), a.where);
  if (iface?.MacAddress) {
    assert.ok(sentInterface.MacAddress === "" && MAC_REGEXP.test(`${iface.MacAddress}`));
  }
  state.endpoints.set(EndpointID, { networkId: NetworkID, address: `${sentInterface.Address}` });
}

async function join(state: State, a: Answer) {
  const { NetworkID = "", EndpointID = "", SandboxKey = "" } = a.sent as Record<string, string>;
  const endpoint = state.endpoints.get(EndpointID);
  if (!state.networks.has(NetworkID)) return assertRefused(a, NetworkID.slice(0, 12), false);
  if (!endpoint) return assertRefused(a, EndpointID.slice(0, 12), false);
  assertOk(a);
  const { InterfaceName, Gateway, DisableGatewayService } = a.body as {
    InterfaceName: { SrcName: string; DstPrefix: string };
    Gateway?: string;
    DisableGatewayService?: boolean;
  };
  assert.equal(InterfaceName.DstPrefix, "eth", "never empty, or the container gets `0`, `1`");
  assert.ok((await links(state.host)).includes(InterfaceName.SrcName), "SrcName exists on Join");
  // Gateway is a bare IP (net.ParseIP); without one, DisableGatewayService keeps docker_gwbridge out.
  if (Gateway !== undefined) assert.equal(Gateway, state.networks.get(NetworkID), a.where);
  assert.ok(Gateway !== undefined || DisableGatewayService === true, a.where);
  assert.ok(!a.body.GatewayIPv6 && a.body.StaticRoutes === undefined, a.where);
  endpoint.srcName = InterfaceName.SrcName;
  await enterSandbox(state, endpoint, SandboxKey, Gateway);
}

async function leave(state: State, a: Answer) {
  const endpoint = state.endpoints.get(String(a.sent.EndpointID));
  if (!endpoint) return assertRefused(a, String(a.sent.EndpointID).slice(0, 12), false);
  assertOk(a, {});
  await leaveSandbox(state, endpoint);
}

async function deleteEndpoint(state: State, a: Answer) {
  // Unknown ids succeed too: libnetwork ignores the answer and forgets the endpoint anyway.
  assertOk(a, {});
  const id = String(a.sent.EndpointID);
  if (!state.endpoints.delete(id)) return;
  const left = await links(state.host);
  for (const name of Object.values(vethNames(id))) assert.ok(!left.includes(name), name);
}

const CHECKS: Record<string, (state: State, a: Answer) => void | Promise<void>> = {
  "Plugin.Activate": (_, a) =>
    assertOk(a, { Implements: ["VolumeDriver", "NetworkDriver", "IpamDriver"] }),
  "NetworkDriver.GetCapabilities": (_, a) =>
    assertOk(a, { Scope: "local", ConnectivityScope: "local" }),
  // RequiresMACAddress false: libnetwork then puts no MAC of its own in CreateEndpoint.
  "IpamDriver.GetCapabilities": (_, a) =>
    assertOk(a, { RequiresMACAddress: false, RequiresRequestReplay: false }),
  "IpamDriver.GetDefaultAddressSpaces"(state, a) {
    assertOk(a);
    assert.ok(a.body.LocalDefaultAddressSpace && a.body.GlobalDefaultAddressSpace, a.where);
    state.space = String(a.body.LocalDefaultAddressSpace);
  },
  "IpamDriver.RequestPool": requestPool,
  "IpamDriver.RequestAddress": requestAddress,
  "IpamDriver.ReleaseAddress": releaseAddress,
  "IpamDriver.ReleasePool": releasePool,
  "NetworkDriver.CreateNetwork": createNetwork,
  "NetworkDriver.DeleteNetwork": deleteNetwork,
  "NetworkDriver.CreateEndpoint": createEndpoint,
  "NetworkDriver.Join": join,
  "NetworkDriver.Leave": leave,
  "NetworkDriver.DeleteEndpoint": deleteEndpoint,
  "NetworkDriver.EndpointOperInfo"(_, a) {
    assertOk(a);
    assert.ok(a.body.Value !== null && typeof a.body.Value === "object", a.where);
  },
  "NetworkDriver.ProgramExternalConnectivity": (_, a) => assertOk(a, {}),
  "NetworkDriver.RevokeExternalConnectivity": (_, a) => assertOk(a, {}),
};

async function replay(state: State, call: Call, recorded: Recorded) {
  const method = recorded.path.slice(1);
  const sent = rewrite(state, JSON.parse(recorded.rawBody || "{}")) as Body;
  // Go's json.Encoder output, as dockerd sends it; the capability calls have an empty body.
  const raw = recorded.rawBody === "" ? "" : `${JSON.stringify(sent)}\n`;
  const reply = await call(method, raw);
  const where = `${method} ${raw.trim()}`;
  assert.equal(reply.contentType, "application/vnd.docker.plugins.v1.2+json", where);
  const body = reply.body as Body;
  assert.ok(body !== null && typeof body === "object", `${where}: a JSON object body`);
  const check = CHECKS[method];
  assert.ok(check, `no check for ${method}`);
  await check(state, { call, reply, body, sent, recorded, where });
}

/** What libnetwork does with SrcName after Join: into the container, renamed, addressed, up. */
async function enterSandbox(state: State, endpoint: Endpoint, key: string, gateway?: string) {
  let sandbox = state.sandboxes.get(key);
  if (!sandbox) state.sandboxes.set(key, sandbox = await netns("sandbox"));
  const taken = new Set(await links(sandbox.name));
  let index = 0;
  while (taken.has(`eth${index}`)) index++;
  const [src, ifname, sb] = [endpoint.srcName!, `eth${index}`, sandbox.name];
  await ip("-n", state.host, "link", "set", "dev", src, "netns", sb);
  await ip("-n", sb, "link", "set", "dev", src, "name", ifname);
  await ip("-n", sb, "addr", "add", endpoint.address, "dev", ifname);
  await ip("-n", sb, "link", "set", "dev", ifname, "up");
  if (gateway && (await ip("-n", sb, "route", "show", "default")).trim() === "") {
    await ip("-n", sb, "route", "add", "default", "via", gateway);
  }
  Object.assign(endpoint, { sandbox, ifname });
}

/** After Leave, answered or not, libnetwork moves the interface back under its SrcName. */
async function leaveSandbox(state: State, endpoint: Endpoint) {
  const { sandbox, ifname, srcName } = endpoint;
  if (!sandbox || !ifname || !srcName) return;
  await ip("-n", sandbox.name, "link", "set", "dev", ifname, "down");
  await ip("-n", sandbox.name, "link", "set", "dev", ifname, "name", srcName);
  await ip("-n", sandbox.name, "link", "set", "dev", srcName, "netns", state.host);
  delete endpoint.sandbox;
  delete endpoint.ifname;
  // A stopped or disconnected container; its namespace goes once nothing of Berth's is in it.
  if ((await links(sandbox.name)).every((name) => name === "lo")) {
    for (const [key, ns] of state.sandboxes) if (ns === sandbox) state.sandboxes.delete(key);
    await sandbox[Symbol.asyncDispose]();
  }
}

async function ping(state: State, from: string, to: string) {
  const address = state.endpoints.get(to)!.address.split("/")[0]!;
  const sandbox = state.endpoints.get(from)!.sandbox!.name;
  const args = ["netns", "exec", sandbox, "busybox", "ping", "-c1", "-W2", address];
  const out = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  assert.ok(out.success, `ping ${address}: ${new TextDecoder().decode(out.stdout)}`);
}

/** 40b and 40c, while Berth is down after the kill -9. */
async function outage(state: State) {
  await ping(state, K1, K2); // 40b: the data plane needs no plugin
  // 40c: `docker stop k2`. Leave, DeleteEndpoint and ReleaseAddress each failed after dockerd's
  // retries and are never sent again; libnetwork still moved k2's interface back under its
  // SrcName and dropped the sandbox.
  await leaveSandbox(state, state.endpoints.get(K2)!);
}

/** Berth's namespace as the state says: bridges, veth pairs (made at Join), peers not lent out. */
function expectedLinks(state: State): string[] {
  const names = ["lo", ...[...state.networks.keys()].map(bridgeName)];
  for (const [id, endpoint] of state.endpoints) {
    if (endpoint.srcName === undefined) continue;
    names.push(vethNames(id).host, ...(endpoint.sandbox ? [] : [endpoint.srcName]));
  }
  return names.sort();
}

Deno.test({
  name: "Berth answers the network traffic recorded from dockerd 20.10 as libnetwork needs",
  ignore: skipUnlessNet("network fixtures replay"),
  async fn(t) {
    await using dir = await tempDir();
    await using host = await netns("replay");
    const state: State = {
      host: host.name,
      space: "",
      renames: new Map(),
      pools: new Map(),
      networks: new Map(),
      endpoints: new Map(),
      sandboxes: new Map(),
    };
    const errors: string[] = [];
    let berth: InProcessBerth | null = await startInProcess(dir.path, { netns: host.name });
    async function step(name: string, work: () => Promise<void>) {
      // Each scenario builds on the ones before: stop at the first that fails.
      assert.ok(await t.step(name, work), `${name} failed`);
    }
    try {
      for (const scenario of SCENARIOS) {
        if (scenario === "ping") {
          // 22: no traffic; the containers of 21 reach each other over Berth's bridge.
          await step("22 n1 and n2 ping each other", async () => {
            await ping(state, N1, N2);
            await ping(state, N2, N1);
          });
        } else if (scenario === "kill") {
          errors.push(...berth!.errors);
          await berth![Symbol.asyncDispose]();
          berth = null;
          await step("40b/40c while Berth is down", () => outage(state));
        } else if (scenario === "restart") {
          berth = await startInProcess(dir.path, { netns: host.name });
          assert.deepEqual(await links(host.name), expectedLinks(state), "restart changes no link");
        } else {
          const requests = await load(scenario);
          await step(`${scenario} (${requests.length} requests)`, async () => {
            for (const request of requests) await replay(state, berth!.call, request);
            assert.deepEqual(await links(host.name), expectedLinks(state));
          });
        }
      }
    } finally {
      if (berth) errors.push(...berth.errors);
      await berth?.[Symbol.asyncDispose]();
      for (const sandbox of state.sandboxes.values()) await sandbox[Symbol.asyncDispose]();
    }
    // Every recorded delete is done, including netk's in 40e, which also took k2's endpoint (its
    // Leave, DeleteEndpoint and ReleaseAddress were lost in 40c's outage) and its veth pair.
    assert.deepEqual([...state.networks.keys()], []);
    assert.deepEqual([...state.endpoints.keys()], []);
    assert.equal(state.pools.size, 0);
    assert.deepEqual(await links(host.name), ["lo"]);
    assert.deepEqual(errors, []);
  },
});
