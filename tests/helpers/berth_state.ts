// Reads what a running Berth holds into the shape of berth_model.ts, and says how it differs
// from a model: volumes through VolumeDriver.List and the admin API (mount IDs and counts), pools
// through the admin API, and the volume directories on the host.
import type { Model } from "./berth_model.ts";
import { runBerth } from "./berth_process.ts";
import type { Call } from "./plugin_socket.ts";

type AdminGet = (path: string) => Promise<{ status: number; text: string }>;
type ActorView = { name: string; state: string; context: Record<string, unknown> };

async function actors(get: AdminGet, kind: string): Promise<ActorView[]> {
  let reply = await get(`/api/actors?kind=${kind}`);
  // The admin endpoint listens before replay ends and says 503 "starting" until then.
  for (let tries = 0; reply.status === 503 && tries < 100; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    reply = await get(`/api/actors?kind=${kind}`);
  }
  if (reply.status !== 200) throw new Error(`admin /api/actors: ${reply.status} ${reply.text}`);
  return (JSON.parse(reply.text) as { actors: ActorView[] }).actors;
}

/** Actors as the admin API and `berth state --json` show them, as a model. */
function modelOf(volumes: ActorView[], pools: ActorView[], problems: string[]): Model {
  const state: Model = { volumes: new Map(), pools: new Map() };
  for (const volume of volumes) {
    const mounts = volume.context.mounts as Record<string, number>;
    state.volumes.set(volume.name, new Map(Object.entries(mounts)));
    if (volume.state !== "mounted" && volume.state !== "unmounted") {
      problems.push(`volume "${volume.name}" is ${volume.state} at rest`);
    }
  }
  for (const pool of pools) {
    const addresses = new Map(Object.entries(pool.context.addresses as Record<string, string>));
    state.pools.set(pool.name, { addresses, gateway: pool.context.gateway as string | null });
  }
  return state;
}

/** What `berth state --json` reads from a state dir's files (Berth stopped or running). */
export async function readStateOffline(stateDir: string): Promise<[Model, string[]]> {
  const { code, stdout, stderr } = await runBerth(["state", "--json", "--state-dir", stateDir]);
  if (code !== 0) return [{ volumes: new Map(), pools: new Map() }, [`berth state: ${stderr}`]];
  const { actors } = JSON.parse(stdout) as { actors: (ActorView & { kind: string })[] };
  const problems: string[] = [];
  const of = (kind: string) => actors.filter((actor) => actor.kind === kind);
  return [modelOf(of("volume"), of("pool"), problems), problems];
}

/** Berth's state as a model, and where List and the admin API disagree with each other. */
export async function readState(call: Call, get: AdminGet): Promise<[Model, string[]]> {
  const problems: string[] = [];
  const state = modelOf(await actors(get, "volume"), await actors(get, "pool"), problems);
  const list = await call("VolumeDriver.List", {});
  const listed = (list.body as { Volumes?: { Name: string; Status: { mounts: number } }[] })
    ?.Volumes;
  if (list.status !== 200 || !Array.isArray(listed)) {
    problems.push(`VolumeDriver.List: ${list.status} ${list.text.slice(0, 200)}`);
  } else {
    const fromList = listed.map((v) => `${v.Name}:${v.Status.mounts}`).sort();
    const fromAdmin = [...state.volumes].map(([name, ids]) => `${name}:${sum(ids)}`).sort();
    if (fromList.join() !== fromAdmin.join()) {
      problems.push(`List says ${fromList.join(", ")}; the admin API ${fromAdmin.join(", ")}`);
    }
  }
  return [state, problems];
}

const sum = (ids: Map<string, number>) => [...ids.values()].reduce((a, b) => a + b, 0);

/** One volume of a model as a line: its mount IDs and counts, or "absent". */
export function describeVolume(model: Model, name: string): string {
  const ids = model.volumes.get(name);
  if (!ids) return "absent";
  return JSON.stringify(Object.fromEntries([...ids].sort(([a], [b]) => (a < b ? -1 : 1))));
}

/** One pool of a model as a line: its addresses with their roles and its gateway, or "absent". */
export function describePool(model: Model, id: string): string {
  const pool = model.pools.get(id);
  if (!pool) return "absent";
  const addresses = [...pool.addresses].map(([ip, role]) => `${ip}=${role}`).sort();
  return `{${addresses.join(" ")}} gateway ${pool.gateway}`;
}

/** Every way `actual` differs from `expected`, one line each (at most `limit`). */
export function compareModel(expected: Model, actual: Model, limit = 20): string[] {
  const out: string[] = [];
  const names = new Set([...expected.volumes.keys(), ...actual.volumes.keys()]);
  for (const name of [...names].sort()) {
    const want = describeVolume(expected, name);
    const got = describeVolume(actual, name);
    if (want !== got) out.push(`volume "${name}": model ${want}, Berth ${got}`);
  }
  const pools = new Set([...expected.pools.keys(), ...actual.pools.keys()]);
  for (const id of [...pools].sort()) {
    const want = describePool(expected, id);
    const got = describePool(actual, id);
    if (want !== got) out.push(`pool ${id}: model ${want}, Berth ${got}`);
  }
  return out.slice(0, limit);
}

/** Volume directories under `volumesDir` that the model lacks, and model volumes without one. */
export function compareHost(expected: Model, volumesDir: string): string[] {
  const onDisk = new Set<string>();
  try {
    for (const entry of Deno.readDirSync(volumesDir)) {
      if (entry.name !== ".staging") onDisk.add(entry.name);
    }
  } catch {
    // no volume made yet
  }
  const out: string[] = [];
  for (const name of onDisk) {
    if (!expected.volumes.has(name)) out.push(`directory volumes/${name} of a volume not held`);
  }
  for (const name of expected.volumes.keys()) {
    try {
      if (!Deno.statSync(`${volumesDir}/${name}/_data`).isDirectory) throw new Error();
    } catch {
      out.push(`volume "${name}" has no directory volumes/${name}/_data`);
    }
  }
  return out;
}
