// deno-lint-ignore-file no-console
// `deno task bench`: drives a real Berth child process over its plugin socket with 1, 16 and 64
// keep-alive clients, times its start on a 100,000-event log, and (when `go` is installed) drives
// an in-memory Go plugin the same way. Prints Markdown to stdout, progress to stderr.
//
// Env: BERTH_BENCH_SECONDS (per phase, default 3), BERTH_BENCH_DIR (default /var/tmp unless it is
// tmpfs), BERTH_BENCH_DENO_FLAGS (extra `deno run` flags for the Berth child, e.g. --cpu-prof).
import { join } from "node:path";
import { connectPlugin, type PluginClient } from "../tests/helpers/plugin_client.ts";
import { buildGoBaseline, goVersion, spawnGoBaseline } from "./_go_baseline.ts";
import { cpuSeconds, machineFacts, measureFdatasync, pickBenchBase } from "./_machine.ts";
import { killAll, type ProcessTracker, type ServerProcess, spawnBerth } from "./_process.ts";
import { countLogEvents, measureStart, settle } from "./_start_time.ts";
import {
  machineTable,
  type StartRow,
  startTable,
  type ThroughputRow,
  throughputTable,
} from "./_report.ts";
import {
  cycleUnit,
  mountPairUnit,
  type PhaseLength,
  type PhaseResult,
  prepareHeld,
  runPhase,
} from "./_workloads.ts";

const SECONDS = Number(Deno.env.get("BERTH_BENCH_SECONDS") ?? "3");
const CLIENT_COUNTS = [1, 16, 64];
const MAX_CLIENTS = 64;
/** The event count the start-time figure is measured at. */
const TARGET_EVENTS = 100_000;
const CYCLE = "create/mount/unmount/remove";
const PAIR = "mount/unmount (held)";

/** What the run collected so far; printed even when a later step fails. */
type Results = { rows: ThroughputRow[]; starts: StartRow[]; notes: string[] };

type Context = { dir: string; tracker: ProcessTracker; clients: PluginClient[]; results: Results };

function progress(message: string) {
  console.error(`[bench] ${message}`);
}

async function connectAll(ctx: Context, socket: string, count: number): Promise<PluginClient[]> {
  const clients: PluginClient[] = [];
  for (let i = 0; i < count; i++) clients.push(await connectPlugin(socket));
  ctx.clients.push(...clients);
  return clients;
}

function closeAll(clients: PluginClient[]) {
  for (const client of clients.splice(0)) client.close();
}

function failOnErrors(phase: PhaseResult) {
  if (phase.errors === 0) return;
  throw new Error(
    `${phase.errors} failed unit(s) in "${phase.workload}" with ${phase.clients} clients:\n  ` +
      phase.errorSamples.join("\n  "),
  );
}

/** Runs `run` while measuring the CPU time of `server` and of the bench process. */
async function withCpu(server: ServerProcess, run: () => Promise<PhaseResult>) {
  const [server0, client0] = [cpuSeconds(server.pid), cpuSeconds("self")];
  const phase = await run();
  const serverCpu = cpuSeconds(server.pid) - server0;
  return { phase, serverCpu, clientCpu: cpuSeconds("self") - client0 };
}

/** Runs one phase on Berth, counting the log records it made durable. */
async function berthPhase(
  ctx: Context,
  clients: PluginClient[],
  berth: ServerProcess,
  stateDir: string,
  spec: { workload: string; count: number; length: PhaseLength; prefix: string },
) {
  const before = await countLogEvents(stateDir);
  const unit = spec.workload === CYCLE ? cycleUnit(spec.prefix) : mountPairUnit(spec.prefix);
  const measured = await withCpu(
    berth,
    () => runPhase(spec.workload, clients, spec.count, spec.length, unit),
  );
  const phase = measured.phase;
  const records = (await countLogEvents(stateDir)) - before;
  ctx.results.rows.push({ server: "Berth", records, ...measured });
  progress(`${spec.workload} × ${spec.count}: ${(phase.calls / phase.seconds).toFixed(0)} calls/s`);
  failOnErrors(phase);
}

/** Starts Berth on `stateDir` with MAX_CLIENTS connections and a held volume per client. */
async function startWithHeld(ctx: Context, stateDir: string, socketName: string) {
  const socket = join(ctx.dir, socketName);
  const berth = spawnBerth(ctx.tracker, { socket, stateDir });
  progress(`Berth pid ${berth.pid} ready after ${(await berth.ready()).toFixed(0)} ms`);
  await settle(berth);
  const clients = await connectAll(ctx, socket, MAX_CLIENTS);
  await prepareHeld(clients[0]!, MAX_CLIENTS);
  return { berth, clients };
}

/** SIGTERMs Berth and checks it synced and exited; returns the last event's sequence number. */
async function stopBerth(berth: ServerProcess, clients: PluginClient[]): Promise<number> {
  closeAll(clients);
  const status = await berth.stop();
  const synced = /stopped; log synced at event (\d+)/.exec(berth.stderr());
  if (!status.success || !synced) {
    throw new Error(`Berth did not stop cleanly (${status.code}):\n${berth.stderr()}`);
  }
  return Number(synced[1]);
}

/** The throughput phases: each workload at each client count, on one Berth. */
async function benchBerth(ctx: Context, stateDir: string) {
  const { berth, clients } = await startWithHeld(ctx, stateDir, "berth.sock");
  failOnErrors(await runPhase("warm-up", clients, 16, { seconds: 1 }, mountPairUnit("warm")));
  failOnErrors(await runPhase("warm-up", clients, 16, { unitsPerClient: 10 }, cycleUnit("warm")));
  for (const workload of [CYCLE, PAIR]) {
    for (const count of CLIENT_COUNTS) {
      const prefix = `${workload === CYCLE ? "cyc" : "pair"}-n${count}`;
      const length = { seconds: SECONDS };
      await berthPhase(ctx, clients, berth, stateDir, { workload, count, length, prefix });
    }
  }
  await stopBerth(berth, clients);
}

/** Grows a fresh state dir's log to TARGET_EVENTS with held mount/unmount pairs at 64 clients. */
async function fillLog(ctx: Context, stateDir: string): Promise<number> {
  const { berth, clients } = await startWithHeld(ctx, stateDir, "fill.sock");
  const missing = TARGET_EVENTS - await countLogEvents(stateDir);
  const unitsPerClient = Math.ceil(missing / 2 / MAX_CLIENTS);
  progress(`filling the log with ${unitsPerClient * 2 * MAX_CLIENTS} more events`);
  await berthPhase(ctx, clients, berth, stateDir, {
    workload: `${PAIR}, filling the log`,
    count: MAX_CLIENTS,
    length: { unitsPerClient },
    prefix: "fill",
  });
  return await stopBerth(berth, clients);
}

/** The same held mount/unmount workload at 64 clients on the in-memory Go plugin. */
async function benchGo(ctx: Context, version: string | null) {
  if (version === null) {
    ctx.results.notes.push("Go baseline skipped: no `go` (apt-get install -y golang-go).");
    return;
  }
  const binary = await buildGoBaseline(ctx.dir);
  const socket = join(ctx.dir, "go.sock");
  const server = spawnGoBaseline(ctx.tracker, binary, socket);
  progress(`Go baseline pid ${server.pid} ready after ${(await server.ready()).toFixed(0)} ms`);
  const clients = await connectAll(ctx, socket, MAX_CLIENTS);
  await prepareHeld(clients[0]!, MAX_CLIENTS);
  failOnErrors(await runPhase("warm-up", clients, 16, { seconds: 1 }, mountPairUnit("warm")));
  for (const count of [1, MAX_CLIENTS]) {
    const unit = mountPairUnit(`go${count}`);
    const measured = await withCpu(
      server,
      () => runPhase(PAIR, clients, count, { seconds: SECONDS }, unit),
    );
    const phase = measured.phase;
    ctx.results.rows.push({ server: "Go baseline (memory)", records: null, ...measured });
    progress(`Go ${PAIR} × ${count}: ${(phase.calls / phase.seconds).toFixed(0)} calls/s`);
    failOnErrors(phase);
  }
  closeAll(clients);
  await server.stop();
}

function printReport(facts: string, results: Results) {
  console.log("## Berth volume bench\n");
  console.log(facts + "\n");
  if (results.rows.length > 0) {
    console.log(`### Throughput (${SECONDS} s per phase; one keep-alive connection per client)\n`);
    console.log(throughputTable(results.rows) + "\n");
  }
  if (results.starts.length > 0) {
    console.log("### Start: spawn → socket accepting connections\n");
    console.log(startTable(results.starts) + "\n");
  }
  const notes = [
    "calls/s counts every HTTP call (a held pair is one Mount and one Unmount: Mount/s = calls/s ÷ 2).",
    "records/s is the growth of the log during the phase; each reply waited for its record's fdatasync.",
    "server/client CPU µs/call: user + system time of the server process and of the bench " +
    "process (all clients) during the phase, divided by the calls.",
    "The clients run in the bench process on the same CPUs as the server.",
    `Start: the 100k log is grown from an empty state dir with held mount/unmount pairs; ` +
    `each try waits for the "serving" line + 50 ms before its SIGTERM (see settle()).`,
    ...results.notes,
  ];
  console.log(notes.map((note) => `- ${note}`).join("\n"));
}

async function main(): Promise<number> {
  const base = pickBenchBase();
  const dir = await Deno.makeTempDir({ dir: base, prefix: "berth-bench-" });
  const ctx: Context = {
    dir,
    tracker: new Set(),
    clients: [],
    results: { rows: [], starts: [], notes: [] },
  };
  const cleanup = async () => {
    closeAll(ctx.clients);
    await killAll(ctx.tracker);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const onSignal = () => cleanup().finally(() => Deno.exit(130));
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let facts = "";
  try {
    const fsync = measureFdatasync(dir);
    const version = await goVersion();
    facts = machineTable(machineFacts(dir), fsync, version ?? "not installed");
    progress(`bench dir ${dir}; fdatasync ${fsync.meanUs.toFixed(0)} µs mean`);
    await benchBerth(ctx, join(dir, "state-throughput"));
    const stateDir = join(dir, "state-100k");
    const synced = await fillLog(ctx, stateDir);
    progress(`log holds ${synced} events; measuring starts`);
    for (
      const [label, stateDirOf, heldVolumes] of [
        ["100k-event log", () => stateDir, MAX_CLIENTS],
        ["empty", (attempt: number) => join(dir, `state-empty-${attempt}`), 0],
      ] as const
    ) {
      const row = await measureStart(ctx, label, { stateDirOf, heldVolumes });
      progress(`start (${label}): ${row.readyMs.map((ms) => ms.toFixed(0)).join(", ")} ms`);
      ctx.results.starts.push(row);
    }
    await benchGo(ctx, version);
    printReport(facts, ctx.results);
    return 0;
  } catch (error) {
    printReport(facts, ctx.results);
    console.error(`\n[bench] FAILED: ${(error as Error).stack ?? error}`);
    return 1;
  } finally {
    await cleanup();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

Deno.exit(await main());
