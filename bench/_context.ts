// deno-lint-ignore-file no-console
// What every bench phase shares: the run's directory, the children and connections it must close,
// the results so far, and the small steps each phase repeats (connect, check, stop Berth).
import { connectPlugin, type PluginClient } from "../tests/helpers/plugin_client.ts";
import { cpuSeconds } from "./_machine.ts";
import type { ProcessTracker, ServerProcess } from "./_process.ts";
import type { DockerRunRow, StartRow, ThroughputRow } from "./_report.ts";
import type { InspectorRow } from "./_inspector.ts";
import { countLogEvents } from "./_start_time.ts";
import { type PhaseLength, type PhaseResult, runPhase, type Unit } from "./_workloads.ts";

/** Seconds per throughput phase (BERTH_BENCH_SECONDS, default 3). */
export const SECONDS = Number(Deno.env.get("BERTH_BENCH_SECONDS") ?? "3");
export const CLIENT_COUNTS = [1, 16, 64];
export const MAX_CLIENTS = 64;

/** What the run collected so far; printed even when a later step fails. */
export type Results = {
  rows: ThroughputRow[];
  ipamRows: ThroughputRow[];
  starts: StartRow[];
  dockerRuns: DockerRunRow[];
  inspector: InspectorRow[];
  /** Whole Markdown sections (heading and table) of phases that print their own. */
  extra: string[];
  notes: string[];
  /** /proc/loadavg's first three fields when the run began. */
  loadAtStart: string;
};

export type Context = {
  dir: string;
  tracker: ProcessTracker;
  clients: PluginClient[];
  results: Results;
  /** Undo steps of phases that touch the host (dockerd, links); run last first, even on SIGINT. */
  cleanups: (() => Promise<void>)[];
  /** Set by SIGINT/SIGTERM: no new phase starts, and a phase between two steps stops. */
  aborted: boolean;
};

export function progress(message: string) {
  console.error(`[bench] ${message}`);
}

export async function connectAll(
  ctx: Context,
  socket: string,
  count: number,
): Promise<PluginClient[]> {
  const clients: PluginClient[] = [];
  for (let i = 0; i < count; i++) clients.push(await connectPlugin(socket));
  ctx.clients.push(...clients);
  return clients;
}

export function closeAll(clients: PluginClient[]) {
  for (const client of clients.splice(0)) client.close();
}

export function failOnErrors(phase: PhaseResult) {
  if (phase.errors === 0) return;
  throw new Error(
    `${phase.errors} failed unit(s) in "${phase.workload}" with ${phase.clients} clients:\n  ` +
      phase.errorSamples.join("\n  "),
  );
}

/** Runs `run` while measuring the CPU time of `server` and of the bench process. */
export async function withCpu(server: ServerProcess, run: () => Promise<PhaseResult>) {
  const [server0, client0] = [cpuSeconds(server.pid), cpuSeconds("self")];
  const phase = await run();
  const serverCpu = cpuSeconds(server.pid) - server0;
  return { phase, serverCpu, clientCpu: cpuSeconds("self") - client0 };
}

/** A Berth child under test: its process, its state dir and the bench's connections to it. */
export type BerthUnderTest = {
  berth: ServerProcess;
  stateDir: string;
  clients: PluginClient[];
  /** How many records its log holds (default: counted in the state dir's segments). */
  logRecords?: () => Promise<number>;
};

/** Runs one timed phase on Berth, counting the log records it made durable, into `rows`. */
export async function berthPhase(
  target: BerthUnderTest,
  rows: ThroughputRow[],
  spec: { workload: string; count: number; length: PhaseLength; unit: Unit },
) {
  const { berth, stateDir, clients } = target;
  const count = target.logRecords ?? (() => countLogEvents(stateDir));
  const before = await count();
  const measured = await withCpu(
    berth,
    () => runPhase(spec.workload, clients, spec.count, spec.length, spec.unit),
  );
  const phase = measured.phase;
  const records = (await count()) - before;
  rows.push({ server: "Berth", records, ...measured });
  progress(`${spec.workload} × ${spec.count}: ${(phase.calls / phase.seconds).toFixed(0)} calls/s`);
  failOnErrors(phase);
}

/** SIGTERMs Berth and checks it synced and exited; returns the last event's sequence number. */
export async function stopBerth(berth: ServerProcess, clients: PluginClient[]): Promise<number> {
  closeAll(clients);
  const status = await berth.stop();
  const synced = /stopped; log synced at event (\d+)/.exec(berth.stderr());
  if (!status.success || !synced) {
    throw new Error(`Berth did not stop cleanly (${status.code}):\n${berth.stderr()}`);
  }
  return Number(synced[1]);
}

/** Runs the registered cleanups, last first; each one runs even if an earlier one failed. */
export async function runCleanups(ctx: Context) {
  for (const cleanup of [...ctx.cleanups].reverse()) {
    try {
      await cleanup();
    } catch (error) {
      progress(`cleanup failed: ${(error as Error).message}`);
    }
  }
}
