// The soak's calls: what each worker asks of its own volumes and its own pool, and how a call
// whose answer a SIGKILL cut off is judged after the restart (either outcome, nothing else).
import { join } from "node:path";
import { applyReply, cloneModel, type Model } from "../helpers/berth_model.ts";
import { describePool, describeVolume } from "../helpers/berth_state.ts";
import type { Random } from "../helpers/random.ts";

export type Op = { method: string; body: Record<string, unknown> };

const GATEWAY = { RequestAddressType: "com.docker.network.gateway" };

/** Worker `w`'s volumes and pool: no other worker touches them, so an in-flight call is alone. */
export function ownedBy(w: number) {
  return {
    volumes: [0, 1, 2].map((v) => `w${w}-v${v}`),
    pool: `198.19.${w}.0/24`,
  };
}

/** Mount IDs as dockerd makes them (64 hex), a few short ones, and a prototype name. */
function mountId(r: Random): string {
  return r.pick(["a", "b", "toString", "c".repeat(64), "d".repeat(64), "__proto__"]);
}

/** The next call of worker `w`, given what the model says it holds. */
export function chooseOp(w: number, r: Random, model: Model): Op {
  const own = ownedBy(w);
  if (r.chance(0.55)) {
    const name = r.pick(own.volumes);
    const ids = model.volumes.get(name);
    if (!ids || r.chance(0.05)) {
      return { method: "VolumeDriver.Create", body: { Name: name, Opts: r.pick([null, {}]) } };
    }
    const held = [...ids.keys()];
    const roll = r.next();
    if (roll < 0.45) return { method: "VolumeDriver.Mount", body: { Name: name, ID: mountId(r) } };
    if (roll < 0.85) {
      const id = held.length > 0 && r.chance(0.9) ? r.pick(held) : mountId(r);
      return { method: "VolumeDriver.Unmount", body: { Name: name, ID: id } };
    }
    return { method: "VolumeDriver.Remove", body: { Name: name } };
  }
  const pool = model.pools.get(own.pool);
  if (!pool) {
    const body = {
      AddressSpace: "BerthLocal",
      Pool: own.pool,
      SubPool: "",
      Options: {},
      V6: false,
    };
    return { method: "IpamDriver.RequestPool", body };
  }
  const roll = r.next();
  if (roll < 0.03) return { method: "IpamDriver.ReleasePool", body: { PoolID: own.pool } };
  if (roll < 0.45 || pool.addresses.size === 0) {
    const address = r.chance(0.7) ? "" : `198.19.${w}.${1 + r.int(254)}`;
    const options = r.chance(0.1) ? GATEWAY : {};
    return {
      method: "IpamDriver.RequestAddress",
      body: { PoolID: own.pool, Address: address, Options: options },
    };
  }
  const address = r.pick([...pool.addresses.keys()]) + (r.chance(0.5) ? "/24" : "");
  return { method: "IpamDriver.ReleaseAddress", body: { PoolID: own.pool, Address: address } };
}

/** What an acknowledgment of `op` would have answered; for a lowest-free address, what Berth holds. */
function answerOf(op: Op, model: Model, state: Model, volumesDir: string) {
  const b = op.body as Record<string, string>;
  switch (op.method) {
    case "VolumeDriver.Mount":
      return { Mountpoint: join(volumesDir, b.Name!, "_data") };
    case "IpamDriver.RequestPool":
      return { PoolID: b.Pool, Pool: b.Pool };
    case "IpamDriver.RequestAddress": {
      if (b.Address !== "") return { Address: `${b.Address}/24` };
      const before = model.pools.get(b.PoolID!)?.addresses ?? new Map();
      const now = [...(state.pools.get(b.PoolID!)?.addresses.keys() ?? [])];
      const added = now.filter((ip) => !before.has(ip));
      return { Address: added.length === 1 ? `${added[0]}/24` : "" };
    }
    default:
      return {};
  }
}

/** The entity `op` changes: a volume name or a pool id. */
function entityOf(op: Op): { kind: "volume" | "pool"; key: string } {
  const b = op.body as Record<string, string>;
  return op.method.startsWith("Volume")
    ? { kind: "volume", key: b.Name! }
    : { kind: "pool", key: b.PoolID ?? b.Pool! };
}

const describe = (model: Model, kind: "volume" | "pool", key: string) =>
  kind === "volume" ? describeVolume(model, key) : describePool(model, key);

/**
 * Judges the calls in flight at a kill: each one's entity in `state` must be as the model has it
 * (the call was lost) or as the model would with the call acknowledged (it was carried out).
 * Returns the model to go on with (Berth's state wherever a call in flight was carried out)
 * and the entities that are neither.
 */
export function settleInFlight(
  model: Model,
  state: Model,
  inFlight: Op[],
  volumesDir: string,
): [Model, string[]] {
  const next = cloneModel(model);
  const problems: string[] = [];
  for (const op of inFlight) {
    const { kind, key } = entityOf(op);
    const got = describe(state, kind, key);
    if (got === describe(model, kind, key)) continue;
    const done = cloneModel(model);
    const reply = {
      status: 200,
      contentType: null,
      text: "",
      body: answerOf(op, model, state, volumesDir),
    };
    applyReply(done, { method: op.method, body: op.body, reply }, volumesDir);
    if (got === describe(done, kind, key)) {
      if (kind === "volume") {
        const ids = done.volumes.get(key);
        if (ids) next.volumes.set(key, ids);
        else next.volumes.delete(key);
      } else {
        const pool = done.pools.get(key);
        if (pool) next.pools.set(key, pool);
        else next.pools.delete(key);
      }
      continue;
    }
    problems.push(
      `${op.method} ${JSON.stringify(op.body)} was in flight: ${kind} ${key} is ${got}; ` +
        `lost: ${describe(model, kind, key)}; done: ${describe(done, kind, key)}`,
    );
  }
  return [next, problems];
}
