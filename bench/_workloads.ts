// The bench workloads: N clients, each on its own keep-alive connection with one call in flight,
// each call timed and its reply checked (HTTP 200 and the shape the protocol promises).
import type { PluginClient, PluginReply } from "../tests/helpers/plugin_client.ts";

/** What one phase did: every call's latency, and what went wrong. */
export type PhaseResult = {
  workload: string;
  clients: number;
  calls: number;
  errors: number;
  errorSamples: string[];
  seconds: number;
  /** Sorted call latencies in microseconds. */
  latenciesUs: Float64Array;
};

/** How long a phase runs: wall-clock seconds, or a fixed number of units per client. */
export type PhaseLength = { seconds: number } | { unitsPerClient: number };

/** One unit of work of one client (a cycle, a pair), made of timed and checked calls. */
export type Unit = (call: TimedCall, client: number, iteration: number) => Promise<void>;
type TimedCall = (
  method: string,
  body: unknown,
  check: (reply: PluginReply) => void,
) => Promise<void>;

/** Checks the reply is 200 with a `{}` body (Create, Unmount, Remove). */
export function expectEmpty(reply: PluginReply) {
  const body = reply.body;
  if (
    reply.status !== 200 || typeof body !== "object" || body === null || Array.isArray(body) ||
    Object.keys(body).length !== 0
  ) {
    throw new Error(`expected 200 {}, got ${reply.status} ${reply.text.slice(0, 200)}`);
  }
}

/** Checks the reply is 200 with `{"Mountpoint": "<non-empty>"}` (Mount). */
export function expectMountpoint(reply: PluginReply) {
  const body = reply.body as Record<string, unknown> | null;
  if (
    reply.status !== 200 || typeof body !== "object" || body === null ||
    Object.keys(body).length !== 1 || typeof body.Mountpoint !== "string" ||
    body.Mountpoint === ""
  ) {
    throw new Error(
      `expected 200 {"Mountpoint":…}, got ${reply.status} ${reply.text.slice(0, 200)}`,
    );
  }
}

/** Create → Mount → Unmount → Remove of a volume of the client's own; 8 log records. */
export function cycleUnit(prefix: string): Unit {
  return async (call, client, iteration) => {
    const Name = `${prefix}-c${client}`;
    const ID = `${prefix}-c${client}-m${iteration}`;
    await call("/VolumeDriver.Create", { Name, Opts: null }, expectEmpty);
    await call("/VolumeDriver.Mount", { Name, ID }, expectMountpoint);
    await call("/VolumeDriver.Unmount", { Name, ID }, expectEmpty);
    await call("/VolumeDriver.Remove", { Name }, expectEmpty);
  };
}

/** The name of the volume client `client` mounts and unmounts in the held workload. */
export function heldVolume(client: number): string {
  return `held-c${client}`;
}

/** Mount + Unmount with a fresh ID on a volume a holder keeps mounted; 1 log record each. */
export function mountPairUnit(prefix: string): Unit {
  return async (call, client, iteration) => {
    const Name = heldVolume(client);
    const ID = `${prefix}-c${client}-m${iteration}`;
    await call("/VolumeDriver.Mount", { Name, ID }, expectMountpoint);
    await call("/VolumeDriver.Unmount", { Name, ID }, expectEmpty);
  };
}

/** Creates the held volumes of clients 0 … count-1 and mounts each with ID `holder`. */
export async function prepareHeld(client: PluginClient, count: number) {
  for (let c = 0; c < count; c++) {
    const Name = heldVolume(c);
    expectEmpty(await client.call("/VolumeDriver.Create", { Name, Opts: null }));
    expectMountpoint(await client.call("/VolumeDriver.Mount", { Name, ID: "holder" }));
  }
}

/** Runs `unit` on the first `count` clients at once until the phase length is reached. */
export async function runPhase(
  workload: string,
  clients: PluginClient[],
  count: number,
  length: PhaseLength,
  unit: Unit,
): Promise<PhaseResult> {
  if (clients.length < count) throw new Error(`need ${count} clients, have ${clients.length}`);
  const latencies: number[][] = [];
  const errorSamples: string[] = [];
  let errors = 0;
  const started = performance.now();
  const deadline = "seconds" in length ? started + length.seconds * 1000 : Infinity;
  const units = "unitsPerClient" in length ? length.unitsPerClient : Infinity;

  async function drive(index: number) {
    const client = clients[index]!;
    const mine: number[] = [];
    latencies.push(mine);
    const call: TimedCall = async (method, body, check) => {
      const t0 = performance.now();
      const reply = await client.call(method, body);
      mine.push((performance.now() - t0) * 1000);
      try {
        check(reply);
      } catch (error) {
        throw new Error(`${method} ${JSON.stringify(body)}: ${(error as Error).message}`);
      }
    };
    for (let i = 0; i < units && performance.now() < deadline; i++) {
      try {
        await unit(call, index, i);
      } catch (error) {
        // A failed call leaves this client's volume in an unknown state: stop this client.
        errors += 1;
        if (errorSamples.length < 5) {
          errorSamples.push(`client ${index}: ${(error as Error).message}`);
        }
        return;
      }
    }
  }

  await Promise.all(Array.from({ length: count }, (_, index) => drive(index)));
  const seconds = (performance.now() - started) / 1000;
  const all = new Float64Array(latencies.reduce((sum, list) => sum + list.length, 0));
  let offset = 0;
  for (const list of latencies) {
    all.set(list, offset);
    offset += list.length;
  }
  all.sort();
  return {
    workload,
    clients: count,
    calls: all.length,
    errors,
    errorSamples,
    seconds,
    latenciesUs: all,
  };
}

/** The nearest-rank percentile `p` (0–100) of sorted `values`. */
export function percentile(values: Float64Array, p: number): number {
  if (values.length === 0) return NaN;
  const rank = Math.min(values.length - 1, Math.max(0, Math.ceil((p / 100) * values.length) - 1));
  return values[rank]!;
}
