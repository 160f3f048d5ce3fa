// The volume phases: VolumeDriver throughput on Berth at 1, 16 and 64 clients, start time on a
// 100,000-event log, and (when `go` is installed) the same held workload on the Go baseline.
import { join } from "node:path";
import { buildGoBaseline, spawnGoBaseline } from "./_go_baseline.ts";
import { type ServerProcess, spawnBerth } from "./_process.ts";
import { countLogEvents, measureStart, settle } from "./_start_time.ts";
import {
  berthPhase,
  type BerthUnderTest,
  CLIENT_COUNTS,
  closeAll,
  connectAll,
  type Context,
  failOnErrors,
  MAX_CLIENTS,
  progress,
  SECONDS,
  stopBerth,
  withCpu,
} from "./_context.ts";
import { cycleUnit, mountPairUnit, prepareHeld, runPhase } from "./_workloads.ts";

/** The event count the start-time figure is measured at. */
const TARGET_EVENTS = 100_000;
const CYCLE = "create/mount/unmount/remove";
const PAIR = "mount/unmount (held)";

/** Starts Berth on `stateDir` with MAX_CLIENTS connections and a held volume per client. */
async function startWithHeld(
  ctx: Context,
  stateDir: string,
  socketName: string,
): Promise<BerthUnderTest & { berth: ServerProcess }> {
  const socket = join(ctx.dir, socketName);
  const berth = spawnBerth(ctx.tracker, { socket, stateDir });
  progress(`Berth pid ${berth.pid} ready after ${(await berth.ready()).toFixed(0)} ms`);
  await settle(berth);
  const clients = await connectAll(ctx, socket, MAX_CLIENTS);
  await prepareHeld(clients[0]!, MAX_CLIENTS);
  return { berth, stateDir, clients };
}

/** The throughput phases: each workload at each client count, on one Berth. */
async function benchBerth(ctx: Context, stateDir: string) {
  const target = await startWithHeld(ctx, stateDir, "berth.sock");
  const { clients } = target;
  failOnErrors(await runPhase("warm-up", clients, 16, { seconds: 1 }, mountPairUnit("warm")));
  failOnErrors(await runPhase("warm-up", clients, 16, { unitsPerClient: 10 }, cycleUnit("warm")));
  for (const workload of [CYCLE, PAIR]) {
    for (const count of CLIENT_COUNTS) {
      const prefix = `${workload === CYCLE ? "cyc" : "pair"}-n${count}`;
      const unit = workload === CYCLE ? cycleUnit(prefix) : mountPairUnit(prefix);
      const length = { seconds: SECONDS };
      await berthPhase(target, ctx.results.rows, { workload, count, length, unit });
    }
  }
  await stopBerth(target.berth, clients);
}

/** Grows a fresh state dir's log to TARGET_EVENTS with held mount/unmount pairs at 64 clients. */
async function fillLog(ctx: Context, stateDir: string): Promise<number> {
  const target = await startWithHeld(ctx, stateDir, "fill.sock");
  const missing = TARGET_EVENTS - await countLogEvents(stateDir);
  const unitsPerClient = Math.ceil(missing / 2 / MAX_CLIENTS);
  progress(`filling the log with ${unitsPerClient * 2 * MAX_CLIENTS} more events`);
  await berthPhase(target, ctx.results.rows, {
    workload: `${PAIR}, filling the log`,
    count: MAX_CLIENTS,
    length: { unitsPerClient },
    unit: mountPairUnit("fill"),
  });
  return await stopBerth(target.berth, target.clients);
}

/** Start time on the 100k-event log and on an empty state dir. */
async function benchStarts(ctx: Context, stateDir: string) {
  for (
    const [label, stateDirOf, heldVolumes] of [
      ["100k-event log", () => stateDir, MAX_CLIENTS],
      ["empty", (attempt: number) => join(ctx.dir, `state-empty-${attempt}`), 0],
    ] as const
  ) {
    const row = await measureStart(ctx, label, { stateDirOf, heldVolumes });
    progress(`start (${label}): ${row.readyMs.map((ms) => ms.toFixed(0)).join(", ")} ms`);
    ctx.results.starts.push(row);
  }
}

/** The same held mount/unmount workload at 1 and 64 clients on the in-memory Go plugin. */
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

/** Every volume phase, in the order the report lists them. */
export async function runVolumePhases(ctx: Context, goVersion: string | null) {
  await benchBerth(ctx, join(ctx.dir, "state-throughput"));
  const stateDir = join(ctx.dir, "state-100k");
  const synced = await fillLog(ctx, stateDir);
  progress(`log holds ${synced} events; measuring starts`);
  await benchStarts(ctx, stateDir);
  await benchGo(ctx, goVersion);
}
