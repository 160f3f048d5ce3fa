// Fuzz requests for every plugin route: a valid body, often mutated (fields dropped, repeated,
// retyped; huge, empty and unicode strings; Object.prototype names as keys and IDs; deep junk;
// broken or cut JSON). Seeded: the same Random gives the same requests.
import type { Model } from "../helpers/berth_model.ts";
import type { Random } from "../helpers/random.ts";

/**
 * One request: the method (path without "/") and the exact body text (undefined sends none);
 * `wellFormed` when neither the body nor the path was mutated or broken.
 */
export type FuzzRequest = { method: string; text: string | undefined; wellFormed: boolean };

/** JSON-object property names that a careless `obj[input]` turns into something else. */
export const PROTO_NAMES = [
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty",
  "valueOf",
  "__defineGetter__",
  "prototype",
];
const NAMES = ["v0", "v1", "v2", "v3", "toString", "constructor", "hasOwnProperty", "valueOf"];
const IDS = ["a", "b", "c".repeat(64), "ünï-😀", ...PROTO_NAMES];
const OPTS: unknown[] = [
  null,
  {},
  { mode: "0750" },
  // Our own uid, so that a run without root can chown to it too.
  { uid: String(Deno.uid() ?? 0), gid: String(Deno.gid() ?? 0) },
  ...PROTO_NAMES.map((key) => entries([[key, "x"]])),
  { mode: "0750", __lookupGetter__: "y" },
];
const POOLS = ["198.18.10.0/24", "198.18.11.0/24", "198.18.10.0/23", "198.19.64.0/20", ""];
const NET_POOL = "198.19.200.0/24";
const hex = (digit: string) => digit.repeat(64);
const NETS = [hex("a"), hex("b"), hex("c")];
const ENDPOINTS = [hex("d"), hex("e"), hex("f"), hex("1")];
const GENERIC = "com.docker.network.generic";
const UNICODE = ["é", "😀", "\u0000", "\u202e", "\ud800", "ｖ１", "v\u0301", "\u2028"];
const UNKNOWN_METHODS = [
  "VolumeDriver.Nope",
  "volumedriver.create",
  "IpamDriver.__proto__",
  ...PROTO_NAMES,
];

/** An object with exactly these own properties, "__proto__" included (a literal would not). */
function entries(pairs: [string, unknown][]): Record<string, unknown> {
  return Object.fromEntries(pairs);
}

type Make = (r: Random, model: Model) => Record<string, unknown> | undefined;

function heldPool(r: Random, model: Model): string {
  const held = [...model.pools.keys()];
  return held.length > 0 && r.chance(0.8) ? r.pick(held) : r.pick(POOLS.slice(0, 4));
}

function address(r: Random, model: Model, pool: string): string {
  const held = [...(model.pools.get(pool)?.addresses.keys() ?? [])];
  if (held.length > 0 && r.chance(0.5)) return r.pick(held) + (r.chance(0.3) ? "/24" : "");
  const [a, b, c] = pool.split(".");
  return `${a}.${b}.${c}.${r.int(256)}`;
}

/** Valid bodies per route, drawn from a few names so that calls meet the same entities. */
function routes(network: boolean): Record<string, Make> {
  const volume = (r: Random) => ({ Name: r.pick(NAMES) });
  const mount = (r: Random, model: Model) => {
    const name = r.pick(NAMES);
    const held = [...(model.volumes.get(name)?.keys() ?? [])];
    return { Name: name, ID: held.length > 0 && r.chance(0.5) ? r.pick(held) : r.pick(IDS) };
  };
  const ep = (r: Random) => ({ NetworkID: r.pick(NETS), EndpointID: r.pick(ENDPOINTS) });
  return {
    "Plugin.Activate": () => undefined,
    "VolumeDriver.Create": (r) => ({ Name: r.pick(NAMES), Opts: r.pick(OPTS) }),
    "VolumeDriver.Remove": volume,
    "VolumeDriver.Mount": mount,
    "VolumeDriver.Unmount": mount,
    "VolumeDriver.Path": volume,
    "VolumeDriver.Get": volume,
    "VolumeDriver.List": () => ({}),
    "VolumeDriver.Capabilities": () => ({}),
    "IpamDriver.GetCapabilities": () => undefined,
    "IpamDriver.GetDefaultAddressSpaces": () => undefined,
    "IpamDriver.RequestPool": (r) => ({
      AddressSpace: "BerthLocal",
      Pool: r.pick(POOLS),
      SubPool: "",
      Options: r.chance(0.8) ? {} : entries([[r.pick(PROTO_NAMES), "x"]]),
      V6: false,
    }),
    "IpamDriver.ReleasePool": (r, model) => ({ PoolID: heldPool(r, model) }),
    "IpamDriver.RequestAddress": (r, model) => {
      const pool = heldPool(r, model);
      return {
        PoolID: pool,
        Address: r.chance(0.6) ? "" : address(r, model, pool),
        Options: r.pick([null, {}, { RequestAddressType: "com.docker.network.gateway" }]),
      };
    },
    "IpamDriver.ReleaseAddress": (r, model) => {
      const pool = heldPool(r, model);
      return { PoolID: pool, Address: address(r, model, pool) };
    },
    "NetworkDriver.GetCapabilities": () => undefined,
    // Without a namespace of its own a valid CreateNetwork would make a bridge on the host.
    "NetworkDriver.CreateNetwork": (r) => ({
      NetworkID: network ? r.pick(NETS) : "not-a-hex-id",
      Options: {
        [GENERIC]: r.pick([{}, { mtu: "1400" }, entries([[r.pick(PROTO_NAMES), "x"]])]),
        "com.docker.network.enable_ipv6": false,
      },
      IPv4Data: [{ AddressSpace: "BerthLocal", Pool: NET_POOL, Gateway: "198.19.200.1/24" }],
      IPv6Data: [],
    }),
    "NetworkDriver.DeleteNetwork": (r) => ({ NetworkID: r.pick(NETS) }),
    "NetworkDriver.AllocateNetwork": (r) => ({ NetworkID: r.pick(NETS), Options: {} }),
    "NetworkDriver.FreeNetwork": (r) => ({ NetworkID: r.pick(NETS) }),
    "NetworkDriver.CreateEndpoint": (r) => ({
      ...ep(r),
      Interface: { Address: `198.19.200.${2 + r.int(8)}/24`, AddressIPv6: "", MacAddress: "" },
      Options: {},
    }),
    "NetworkDriver.DeleteEndpoint": ep,
    "NetworkDriver.EndpointOperInfo": ep,
    "NetworkDriver.Join": (r) => ({
      ...ep(r),
      SandboxKey: "/var/run/docker/netns/fz",
      Options: {},
    }),
    "NetworkDriver.Leave": ep,
    "NetworkDriver.DiscoverNew": () => ({ DiscoveryType: 1, DiscoveryData: {} }),
    "NetworkDriver.DiscoverDelete": () => ({ DiscoveryType: 1, DiscoveryData: {} }),
    "NetworkDriver.ProgramExternalConnectivity": ep,
    "NetworkDriver.RevokeExternalConnectivity": ep,
  };
}

/** A value of some JSON type, often not the one a field wants. */
function junk(r: Random, depth = 0): unknown {
  switch (r.int(depth > 2 ? 6 : 9)) {
    case 0:
      return r.pick([0, -1, 1.5, 1e308, -0, 2 ** 53 + 1]);
    case 1:
      return r.pick([true, false, null]);
    case 2:
      return "";
    case 3:
      return r.pick(PROTO_NAMES);
    case 4:
      return Array.from({ length: 1 + r.int(4) }, () => r.pick(UNICODE)).join("") + "v";
    case 5:
      return "x".repeat(r.pick([256, 1000, 70_000]));
    case 6:
      return Array.from({ length: r.int(4) }, () => junk(r, depth + 1));
    case 7:
      return entries([[r.pick(PROTO_NAMES), junk(r, depth + 1)], ["k", junk(r, depth + 1)]]);
    default: {
      // Deep nesting: JSON.parse and schemas must not fall over.
      const depthOf = r.pick([50, 1000, 5000]);
      return JSON.parse("[".repeat(depthOf) + "]".repeat(depthOf));
    }
  }
}

/** One mutation of the body's fields, in place; some write the text themselves. */
function mutate(r: Random, body: Record<string, unknown>): string | null {
  const keys = Object.keys(body);
  const key = keys.length > 0 ? r.pick(keys) : "Name";
  const inner = body[key];
  switch (r.int(9)) {
    case 0:
      delete body[key];
      return null;
    case 1: {
      // A repeated key: JSON.parse keeps the last one, as Go's decoder does.
      const text = JSON.stringify(body);
      const extra = `${JSON.stringify(key)}:${JSON.stringify(junk(r))}`;
      return text === "{}" ? `{${extra}}` : `${text.slice(0, -1)},${extra}}`;
    }
    case 2:
      body[key] = junk(r);
      return null;
    case 3:
      body[key] = r.pick(["", " ", "x".repeat(r.pick([255, 256, 4096]))]);
      return null;
    case 4:
      body[key] = r.pick(UNICODE) + (typeof inner === "string" ? inner : "v");
      return null;
    case 5:
      body[key] = r.pick(PROTO_NAMES);
      return null;
    case 6: {
      // Prototype names as keys, at the top or inside a nested map (Opts, Options, Interface).
      const target = typeof inner === "object" && inner !== null && !Array.isArray(inner)
        ? inner as Record<string, unknown>
        : body;
      Object.defineProperty(target, r.pick(PROTO_NAMES), {
        value: r.chance(0.5) ? "x" : junk(r),
        enumerable: true,
        configurable: true,
        writable: true,
      });
      return null;
    }
    case 7:
      body[`Extra${r.int(3)}`] = junk(r);
      return null;
    default:
      body[key] = junk(r);
      return null;
  }
}

/** The body text broken on purpose: cut short, not JSON, or JSON that is not an object. */
function breakText(r: Random, text: string): string {
  switch (r.int(4)) {
    case 0:
      return text.slice(0, r.int(text.length));
    case 1:
      return r.pick(["{", "nul", "{'Name':'v0'}", '{"Name":"v0",}', "\u00ff\u00fe", "{}}"]);
    case 2:
      return r.pick(["[]", "null", "42", '"v0"', "true", "[{}]"]);
    default:
      return text + r.pick(["x", "}", " {}"]);
  }
}

/** Bodies over 1 MiB: Berth answers 413 (the body limit) without reading them through. */
export const BODY_LIMIT = 1 << 20;

/** A generator of fuzz requests; `network` false keeps CreateNetwork from making a bridge. */
export function createRequests(r: Random, network: boolean) {
  const table = routes(network);
  const methods = Object.keys(table);
  return function next(model: Model): FuzzRequest {
    if (r.chance(0.01)) return { method: r.pick(UNKNOWN_METHODS), text: "{}", wellFormed: false };
    const method = r.pick(methods);
    const made = table[method]!(r, model);
    // A copy made by JSON.parse: mutations must not reach the shared option objects above.
    const body = made === undefined ? undefined : JSON.parse(JSON.stringify(made));
    if (r.chance(0.002)) {
      const text = JSON.stringify({ ...body, Name: "x".repeat(BODY_LIMIT + 10) });
      return { method, text, wellFormed: false };
    }
    if (body === undefined) {
      return { method, text: r.chance(0.8) ? undefined : "{}", wellFormed: true };
    }
    if (!r.chance(0.55)) {
      const text = JSON.stringify(body);
      return r.chance(0.05)
        ? { method, text: breakText(r, text), wellFormed: false }
        : { method, text, wellFormed: true };
    }
    let text: string | null = null;
    for (let n = 1 + r.int(3); n > 0 && text === null; n--) text = mutate(r, body);
    text ??= JSON.stringify(body);
    return { method, text: r.chance(0.05) ? breakText(r, text) : text, wellFormed: false };
  };
}
