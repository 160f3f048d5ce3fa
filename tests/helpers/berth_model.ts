// What Berth must hold, as a test sees it: volumes (mount ID → count) and IPAM pools (address →
// role), fed only by acknowledged replies, with the checks each acknowledgment must pass. Written
// apart from src/ on purpose: its address arithmetic is its own, so a bug there cannot hide one.
import { join } from "node:path";
import type { Reply } from "./plugin_socket.ts";

export type PoolModel = { addresses: Map<string, string>; gateway: string | null };

/** Volume name → mount ID → count; pool id (its CIDR) → what it hands out. */
export type Model = {
  volumes: Map<string, Map<string, number>>;
  pools: Map<string, PoolModel>;
};

export function emptyModel(): Model {
  return { volumes: new Map(), pools: new Map() };
}

export function cloneModel(model: Model): Model {
  return {
    volumes: new Map([...model.volumes].map(([name, ids]) => [name, new Map(ids)])),
    pools: new Map(
      [...model.pools].map(([id, pool]) => [id, { ...pool, addresses: new Map(pool.addresses) }]),
    ),
  };
}

/** The default `--pool-range`: where a pool asked for without a subnet must come from. */
const POOL_RANGE = "198.18.0.0/15";
const KNOWN_VOLUME_OPTIONS = new Set(["uid", "gid", "mode"]);
const GATEWAY_TYPE = "com.docker.network.gateway";

/** A dotted IPv4 address as a number, or null; no leading zeros, as Berth reads them. */
export function ipValue(text: string): number | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let ip = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || (part.length > 1 && part[0] === "0") || Number(part) > 255) {
      return null;
    }
    ip = ip * 256 + Number(part);
  }
  return ip;
}

function dotted(ip: number): string {
  return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join(".");
}

/** [first, last] of a CIDR, or null. */
export function span(cidr: string): [number, number] | null {
  const [address = "", length = "", ...rest] = cidr.split("/");
  const ip = ipValue(address);
  const prefix = Number(length);
  if (rest.length > 0 || ip === null || !/^\d{1,2}$/.test(length) || prefix > 32) return null;
  const size = 2 ** (32 - prefix);
  const first = ip - (ip % size);
  return [first, first + size - 1];
}

/** Whether a reply acknowledges the call: 200 and no error in `Err` or `Error`. */
export function acknowledged(reply: Reply): boolean {
  if (reply.status !== 200 || typeof reply.body !== "object" || reply.body === null) return false;
  const { Err, Error } = reply.body as Record<string, unknown>;
  return !Err && !Error;
}

type Body = Record<string, unknown>;
const str = (value: unknown) => (typeof value === "string" ? value : "");
const total = (ids: Map<string, number> | undefined) =>
  [...(ids ?? new Map<string, number>()).values()].reduce((sum, count) => sum + count, 0);

/**
 * The status a well-formed call must get, given the model, where the model can tell (null where
 * it cannot: which pool or address is free is Berth's to choose).
 */
export function expectedStatus(model: Model, method: string, body: Body): number | null {
  const ids = model.volumes.get(str(body.Name));
  const held = (ids?.get(str(body.ID)) ?? 0) > 0;
  switch (method) {
    case "VolumeDriver.Create": {
      const opts = typeof body.Opts === "object" && body.Opts !== null
        ? Object.keys(body.Opts)
        : [];
      return opts.every((key) => KNOWN_VOLUME_OPTIONS.has(key)) ? 200 : 400;
    }
    case "VolumeDriver.Mount":
    case "VolumeDriver.Get":
    case "VolumeDriver.Path":
      return ids ? 200 : 500;
    case "VolumeDriver.Unmount":
      return held ? 200 : 500;
    case "VolumeDriver.Remove":
      return ids && total(ids) === 0 ? 200 : 500;
    case "IpamDriver.ReleasePool":
    case "IpamDriver.ReleaseAddress":
      return 200;
    default:
      return null;
  }
}

/**
 * Feeds one answered call to `model`: an acknowledged change is applied; a read is compared.
 * `body` is the request as Berth parsed it (JSON.parse of the bytes sent). Returns what was wrong.
 */
export function applyReply(
  model: Model,
  call: { method: string; body: unknown; reply: Reply },
  volumesDir: string,
): string[] {
  const { method, reply } = call;
  const b = (typeof call.body === "object" && call.body !== null ? call.body : {}) as Body;
  const answer = (typeof reply.body === "object" && reply.body !== null ? reply.body : {}) as Body;
  const name = str(b.Name);
  const ids = model.volumes.get(name);
  const problems: string[] = [];
  const wrong = (what: string) => problems.push(`${method}: ${what}`);
  if (!acknowledged(reply)) {
    if (method === "VolumeDriver.Get" && reply.status === 500 && ids) {
      wrong(`refused Get of volume "${name}", which exists`);
    }
    return problems;
  }
  switch (method) {
    case "VolumeDriver.Create": {
      const opts = typeof b.Opts === "object" && b.Opts !== null ? Object.keys(b.Opts) : [];
      const unknown = opts.filter((key) => !KNOWN_VOLUME_OPTIONS.has(key));
      if (unknown.length > 0) wrong(`acknowledged unknown option(s) ${JSON.stringify(unknown)}`);
      if (!ids) model.volumes.set(name, new Map());
      break;
    }
    case "VolumeDriver.Mount": {
      if (!ids) return [...problems, `${method}: acknowledged for unknown volume "${name}"`];
      const id = str(b.ID);
      ids.set(id, (ids.get(id) ?? 0) + 1);
      const expected = join(volumesDir, name, "_data");
      if (answer.Mountpoint !== expected) wrong(`Mountpoint ${answer.Mountpoint} ≠ ${expected}`);
      break;
    }
    case "VolumeDriver.Unmount": {
      const id = str(b.ID);
      const count = ids?.get(id) ?? 0;
      if (!ids || count === 0) {
        wrong(`acknowledged for mount ID ${JSON.stringify(id)}, which holds no mount of "${name}"`);
      } else if (count === 1) ids.delete(id);
      else ids.set(id, count - 1);
      break;
    }
    case "VolumeDriver.Remove":
      if (!ids) wrong(`acknowledged for unknown volume "${name}"`);
      else if (total(ids) > 0) wrong(`acknowledged while "${name}" has ${total(ids)} mounts`);
      model.volumes.delete(name);
      break;
    case "VolumeDriver.Get": {
      const volume = (answer.Volume ?? {}) as Body;
      const mounts = (volume.Status as Body | undefined)?.mounts;
      if (!ids) wrong(`answered for unknown volume "${name}"`);
      else if (volume.Name !== name || mounts !== total(ids)) {
        wrong(`"${name}" answered ${JSON.stringify(volume).slice(0, 200)}; model: ${total(ids)}`);
      }
      break;
    }
    case "VolumeDriver.Path":
      if (!ids) wrong(`answered for unknown volume "${name}"`);
      else if ((answer.Mountpoint === "") !== (total(ids) === 0)) {
        wrong(`"${name}" Mountpoint "${answer.Mountpoint}" with ${total(ids)} mounts`);
      }
      break;
    case "IpamDriver.RequestPool":
      problems.push(...requestPool(model, b, answer));
      break;
    case "IpamDriver.ReleasePool":
      model.pools.delete(str(b.PoolID));
      break;
    case "IpamDriver.RequestAddress":
      problems.push(...requestAddress(model, b, answer));
      break;
    case "IpamDriver.ReleaseAddress": {
      const pool = model.pools.get(str(b.PoolID));
      const ip = ipValue(str(b.Address).split("/")[0]!);
      if (pool && ip !== null) {
        pool.addresses.delete(dotted(ip));
        if (pool.gateway === dotted(ip)) pool.gateway = null;
      }
      break;
    }
  }
  return problems;
}

function requestPool(model: Model, b: Body, answer: Body): string[] {
  const id = str(answer.PoolID);
  const range = span(id);
  const where = `IpamDriver.RequestPool ${JSON.stringify(b.Pool ?? "")} → ${JSON.stringify(id)}`;
  if (range === null || answer.Pool !== id) return [`${where}: not a CIDR pool`];
  const problems: string[] = [];
  const [lo, hi] = span(POOL_RANGE)!;
  if (str(b.Pool) === "" && (range[0] < lo || range[1] > hi)) problems.push(`${where}: off range`);
  if (str(b.Pool) !== "" && span(str(b.Pool))?.join() !== range.join()) {
    problems.push(`${where}: not the pool asked for`);
  }
  for (const [other, pool] of model.pools) {
    const [first, last] = span(other)!;
    // The same pool again while it hands out nothing is dockerd resending a lost answer.
    const resent = other === id && pool.addresses.size === 0;
    if (!resent && first <= range[1] && range[0] <= last) {
      problems.push(`${where}: overlaps pool ${other}, which is held`);
    }
  }
  if (!model.pools.has(id)) model.pools.set(id, { addresses: new Map(), gateway: null });
  return problems;
}

function requestAddress(model: Model, b: Body, answer: Body): string[] {
  const poolId = str(b.PoolID);
  const pool = model.pools.get(poolId);
  const given = str(answer.Address);
  const where = `IpamDriver.RequestAddress in ${JSON.stringify(poolId)} → ${JSON.stringify(given)}`;
  if (!pool) return [`${where}: acknowledged in a pool the model lacks`];
  const range = span(poolId)!;
  const [address = "", length = ""] = given.split("/");
  const ip = ipValue(address);
  if (ip === null || ip < range[0] || ip > range[1] || length !== poolId.split("/")[1]) {
    return [`${where}: not an address of the pool`];
  }
  const problems: string[] = [];
  const asked = ipValue(str(b.Address).split("/")[0]!);
  if (str(b.Address) !== "" && asked !== ip) problems.push(`${where}: not the address asked for`);
  const options = (typeof b.Options === "object" && b.Options !== null ? b.Options : {}) as Body;
  const role = options.RequestAddressType === GATEWAY_TYPE ? "gateway" : "endpoint";
  const key = dotted(ip);
  // A second gateway request is dockerd resending a lost answer: the same gateway again.
  const resent = role === "gateway" && pool.gateway === key;
  if (pool.addresses.has(key) && !resent) problems.push(`${where}: already handed out`);
  pool.addresses.set(key, role);
  if (role === "gateway") pool.gateway = key;
  return problems;
}
