// deno-lint-ignore-file no-console
// `deno task bench`: drives real Berth child processes over their plugin sockets. Volume phases:
// 1, 16 and 64 keep-alive clients, start time on a 100,000-event log, and (when `go` is installed)
// an in-memory Go plugin the same way. Then IPAM RequestAddress/ReleaseAddress pairs at 1, 16 and
// 64 clients, and (as root, with dockerd) `docker run --network` on a Berth network against
// Docker's bridge driver. Prints Markdown to stdout, progress to stderr.
//
// Env: BERTH_BENCH_SECONDS (per phase, default 3), BERTH_BENCH_DIR (default /var/tmp unless it is
// tmpfs), BERTH_BENCH_DENO_FLAGS (extra `deno run` flags for the Berth child, e.g. --cpu-prof),
// BERTH_BENCH_DOCKER_RUNS (timed runs per network, default 20), BERTH_BENCH_ONLY (a comma list of
// phases to run: volume, scale, patterns, ipam, docker, inspector, start; default all),
// BERTH_BENCH_START (curve, memory: the parts of the start phase; default both).
import { goVersion } from "./_go_baseline.ts";
import { machineFacts, measureFdatasync, pickBenchBase } from "./_machine.ts";
import { killAll } from "./_process.ts";
import { dockerRunTable, machineTable, startTable, throughputTable } from "./_report.ts";
import {
  closeAll,
  type Context,
  progress,
  type Results,
  runCleanups,
  SECONDS,
} from "./_context.ts";
import { runDockerRunPhase } from "./_docker_run.ts";
import { runInspectorPhases } from "./_inspector.ts";
import { runIpamPhases } from "./_ipam.ts";
import { runPatternPhases } from "./_patterns.ts";
import { runScalePhases } from "./_scale.ts";
import { curveTable, memoryTable, runStartCurve } from "./_start_curve.ts";
import { runVolumePhases } from "./_volume_phases.ts";

/** The 1, 5 and 15 minute load averages: other work on these CPUs skews every figure. */
function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" / ");
  } catch {
    return "unknown";
  }
}

function printReport(facts: string, results: Results) {
  console.log("## Berth bench\n");
  console.log(facts + "\n");
  if (results.rows.length > 0) {
    console.log(`### Volumes (${SECONDS} s per phase; one keep-alive connection per client)\n`);
    console.log(throughputTable(results.rows) + "\n");
  }
  if (results.starts.length > 0) {
    console.log("### Start: spawn → socket accepting connections\n");
    console.log(startTable(results.starts) + "\n");
  }
  if (results.ipamRows.length > 0) {
    console.log(
      `### IPAM: RequestAddress + ReleaseAddress on one /22 pool (${SECONDS} s per phase)\n`,
    );
    console.log(throughputTable(results.ipamRows, { label: "pairs/s", callsPerUnit: 2 }) + "\n");
  }
  if (results.dockerRuns.length > 0) {
    console.log("### `docker run --rm --network X IMAGE true`: wall time of the docker CLI\n");
    console.log(dockerRunTable(results.dockerRuns) + "\n");
  }
  if (results.inspector.length > 0) {
    console.log("### Inspector and time travel\n");
    console.log("| what | figure | how |\n| --- | --- | --- |");
    for (const row of results.inspector) console.log(`| ${row.join(" | ")} |`);
    console.log("");
  }
  for (const section of results.extra) console.log(section + "\n");
  const notes = [
    "calls/s counts every HTTP call (a held pair is one Mount and one Unmount: Mount/s = calls/s ÷ 2).",
    "records/s is the growth of the log during the phase; each reply waited for its record's fdatasync.",
    "server/client CPU µs/call: user + system time of the server process and of the bench " +
    "process (all clients) during the phase, divided by the calls.",
    "The clients run in the bench process on the same CPUs as the server.",
    `Start: the 100k log is grown from an empty state dir with held mount/unmount pairs; ` +
    `each try waits for the "serving" line + 50 ms before its SIGTERM (see settle()).`,
    `Load average (1 / 5 / 15 min) just before the run: ${results.loadAtStart}. The bench itself ` +
    `keeps up to ${navigator.hardwareConcurrency} CPUs busy, so other work during the run ` +
    "(a start value well above 0) lowers every figure.",
    "IPAM: every client asks for the lowest free address of the same pool (one pool actor), " +
    "checks it is a usable /22 address no other client holds, and releases the bare IP.",
    ...results.notes,
  ];
  console.log(notes.map((note) => `- ${note}`).join("\n"));
}

/** Runs every phase; prints the report (also after a failure); resolves with the exit code. */
export async function runBench(): Promise<number> {
  const base = pickBenchBase();
  const dir = await Deno.makeTempDir({ dir: base, prefix: "berth-bench-" });
  const ctx: Context = {
    dir,
    tracker: new Set(),
    clients: [],
    results: {
      rows: [],
      ipamRows: [],
      starts: [],
      dockerRuns: [],
      inspector: [],
      extra: [],
      notes: [],
      loadAtStart: loadAverage(),
    },
    cleanups: [],
    aborted: false,
  };
  // Cleanup may run twice (on a signal, then when the failing phase unwinds); each run undoes
  // whatever exists by then, after the previous run finished.
  let cleaning = Promise.resolve();
  const cleanup = () =>
    cleaning = cleaning.then(async () => {
      closeAll(ctx.clients);
      await runCleanups(ctx);
      await killAll(ctx.tracker);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    });
  const onSignal = () => {
    if (ctx.aborted) Deno.exit(130);
    ctx.aborted = true;
    progress("interrupted: cleaning up (signal again to quit at once)");
    cleanup();
    // The phase in flight fails once its children are gone and main returns; this is a backstop.
    Deno.unrefTimer(setTimeout(() => Deno.exit(130), 60_000));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let facts = "";
  try {
    const fsync = measureFdatasync(dir);
    const version = await goVersion();
    facts = machineTable(machineFacts(dir), fsync, version ?? "not installed");
    progress(`bench dir ${dir}; fdatasync ${fsync.meanUs.toFixed(0)} µs mean`);
    const phases = {
      volume: () => runVolumePhases(ctx, version),
      scale: () => runScalePhases(ctx),
      patterns: () => runPatternPhases(ctx),
      ipam: () => runIpamPhases(ctx),
      docker: () => runDockerRunPhase(ctx),
      inspector: () => runInspectorPhases(ctx),
      start: async () => {
        const { curve, memory } = await runStartCurve(ctx);
        ctx.results.extra.push(
          "### Start-time curve: spawn → socket accepting, by history and live volumes\n\n" +
            curveTable(curve),
          "### Memory of an idle Berth (8 s after start, after a full GC)\n\n" +
            memoryTable(memory),
        );
      },
    };
    const only = Deno.env.get("BERTH_BENCH_ONLY")?.split(",");
    for (const [name, phase] of Object.entries(phases)) {
      if (only && !only.includes(name)) continue;
      if (ctx.aborted) throw new Error("Interrupted");
      await phase();
    }
    printReport(facts, ctx.results);
    return 0;
  } catch (error) {
    printReport(facts, ctx.results);
    console.error(`\n[bench] FAILED: ${(error as Error).stack ?? error}`);
    return ctx.aborted ? 130 : 1;
  } finally {
    await cleanup();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

if (import.meta.main) Deno.exit(await runBench());
