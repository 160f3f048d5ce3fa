// The start-time curve: socket ready and peak memory against events of history × live volumes,
// from a snapshot at the end of the log (a clean stop), from what the checkpoint policy leaves at
// its worst for a crash (a full snapshot as far back as it can be, the deltas after it, and the
// most log the policy lets pile up after the newest), and from the whole log (no snapshot). Then the memory of an idle Berth at 0, 10,000 and 100,000 volumes.
import { join } from "node:path";
import { DEFAULT_CHECKPOINT_POLICY } from "../src/engine/checkpoint.ts";
import type { AnyMachineSnapshot } from "xstate";
import { applyRecord } from "../src/engine/replay.ts";
import { saveSnapshot } from "../src/engine/snapshots.ts";
import { readLog } from "../src/log/reader.ts";
import { listSnapshots } from "../src/log/snapshot_file.ts";
import { writeBigLog } from "../tests/helpers/big_log.ts";
import {
  closeAll,
  connectAll,
  type Context,
  failOnErrors,
  MAX_CLIENTS,
  progress,
} from "./_context.ts";
import { cycleUnit, runPhase } from "./_workloads.ts";
import { adminPortOf } from "./_inspector.ts";
import { spawnServer } from "./_process.ts";
import { settle } from "./_start_time.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const TRIES = 3;
/** [events of history, live volumes]. */
const POINTS: [number, number][] = [[100_000, 1_000], [1_000_000, 10_000], [200_000, 100_000], [
  1_000_000,
  100_000,
]];

export type CurveRow = {
  events: number;
  volumes: number;
  from: string;
  readyMs: number[];
  peakMiB: number;
};
export type MemoryRow = {
  volumes: number;
  rssMiB: number;
  heapMiB: number;
  /** After a burst of create/mount/unmount/remove cycles at 64 clients, then 5 s and 15 s idle. */
  afterBurst: { rssMiB: number; heapMiB: number }[] | null;
};

const BURST_SECONDS = 5;

function memoryOf(pid: number, field: "VmHWM" | "VmRSS"): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? "0") / 1024;
}

function spawn(ctx: Context, stateDir: string, label: string) {
  const socket = join(ctx.dir, "curve.sock");
  return spawnServer(ctx.tracker, {
    label,
    command: Deno.execPath(),
    args: [
      "run",
      "--v8-flags=--expose-gc",
      "--allow-all",
      MAIN,
      "serve",
      "--socket",
      socket,
      "--state-dir",
      stateDir,
      "--admin",
      "127.0.0.1:0",
    ],
    socket,
    env: { NO_COLOR: "1" },
  });
}

/** Starts Berth TRIES times on `stateDir`, putting the snapshots back as they were after each. */
async function measure(ctx: Context, stateDir: string, from: string, tries = TRIES) {
  const logDir = join(stateDir, "log");
  const before = new Set((await listSnapshots(logDir)).map((snapshot) => snapshot.path));
  const readyMs: number[] = [];
  let peakMiB = 0;
  for (let i = 0; i < tries; i++) {
    const berth = spawn(ctx, stateDir, `Berth (start from ${from})`);
    readyMs.push(await berth.ready(120_000));
    peakMiB = Math.max(peakMiB, memoryOf(berth.pid, "VmHWM"));
    await settle(berth);
    const status = await berth.stop();
    if (!status.success) throw new Error(`Berth exited with ${status.code}:\n${berth.stderr()}`);
    // The stop took a snapshot at the end: gone again, so every try starts the same way.
    for (const snapshot of await listSnapshots(logDir)) {
      if (!before.has(snapshot.path)) await Deno.remove(snapshot.path);
    }
  }
  return { readyMs, peakMiB };
}

/**
 * The snapshots the checkpoint policy would leave at its worst moment for a crash, made by
 * replaying the log in this process: the last full one as far back as the policy lets it be
 * (as many events as there are actors, at most), a delta every `everyEvents` after it, the last
 * of them `everyEvents - 1` events before the end of the log. Returns the delta count and tail.
 */
async function worstCrashSnapshots(logDir: string, last: number, volumes: number) {
  const every = DEFAULT_CHECKPOINT_POLICY.everyEvents;
  const newest = last - (every - 1);
  const deltas = Math.max(0, Math.ceil(volumes / every) - 1);
  const points = Array.from({ length: deltas + 1 }, (_, i) => newest - (deltas - i) * every);
  const actors = new Map<string, AnyMachineSnapshot>();
  let changed = new Set<string>();
  let from = 0;
  for (const [i, seq] of points.entries()) {
    for await (const record of readLog(logDir, { from: from + 1, to: seq })) {
      applyRecord(actors, record, () => {});
      changed.add(record.actor);
    }
    if (i === 0) await saveSnapshot(logDir, seq, [...actors], Date.now());
    else {
      const live = [...changed].flatMap((id) => {
        const snapshot = actors.get(id);
        return snapshot ? [[id, snapshot] as [string, AnyMachineSnapshot]] : [];
      });
      const removed = [...changed].filter((id) => !actors.has(id));
      await saveSnapshot(logDir, seq, live, Date.now(), { base: from, removed });
    }
    changed = new Set();
    from = seq;
  }
  return { deltas, tail: last - newest, actors, newest };
}

/** A full snapshot at the end of the log, from the state at `from` and the records after it. */
async function snapshotAtEnd(
  logDir: string,
  last: number,
  from: number,
  actors: Map<string, AnyMachineSnapshot>,
) {
  for await (const record of readLog(logDir, { from: from + 1, to: last })) {
    applyRecord(actors, record, () => {});
  }
  await saveSnapshot(logDir, last, [...actors], Date.now());
}

export async function runStartCurve(
  ctx: Context,
): Promise<{ curve: CurveRow[]; memory: MemoryRow[] }> {
  const curve: CurveRow[] = [];
  const idle = new Map<number, string>();
  // BERTH_BENCH_START=memory: only the memory part, on state dirs written for it.
  const only = Deno.env.get("BERTH_BENCH_START")?.split(",");
  for (const [events, volumes] of only && !only.includes("curve") ? [] : POINTS) {
    const stateDir = join(ctx.dir, `state-curve-${events}-${volumes}`);
    const logDir = join(stateDir, "log");
    const last = await writeBigLog(stateDir, events, volumes);
    const row = (from: string, measured: { readyMs: number[]; peakMiB: number }) => {
      curve.push({ events: last, volumes, from, ...measured });
      progress(
        `start, ${last} events, ${volumes} volumes, ${from}: ` +
          `${measured.readyMs.map((ms) => ms.toFixed(0)).join(", ")} ms, peak ${
            measured.peakMiB.toFixed(0)
          } MiB`,
      );
    };
    if (events === 1_000_000 && volumes === 10_000) {
      row("the whole log (no snapshot)", await measure(ctx, stateDir, "log", 1));
    }
    const worst = await worstCrashSnapshots(logDir, last, volumes);
    row(
      `a full snapshot, ${worst.deltas} deltas, ${worst.tail} events of log (worst crash)`,
      await measure(ctx, stateDir, "crash"),
    );
    await snapshotAtEnd(logDir, last, worst.newest, worst.actors);
    row("a snapshot at the end (clean stop)", await measure(ctx, stateDir, "clean"));
    if (!idle.has(volumes)) idle.set(volumes, stateDir);
  }
  const memory: MemoryRow[] = [];
  idle.set(0, join(ctx.dir, "state-curve-empty"));
  for (const volumes of [10_000, 100_000]) {
    if (idle.has(volumes)) continue;
    const stateDir = join(ctx.dir, `state-idle-${volumes}`);
    await writeBigLog(stateDir, 2 * volumes, volumes);
    idle.set(volumes, stateDir);
  }
  for (const volumes of [0, 10_000, 100_000]) {
    const stateDir = idle.get(volumes);
    if (!stateDir) continue;
    const berth = spawn(ctx, stateDir, `Berth (idle, ${volumes} volumes)`);
    await berth.ready(120_000);
    await settle(berth);
    // Past the first lull after start (5 s without a record), when Berth gives back what the
    // start left, and the pages are released.
    await new Promise((resolve) => setTimeout(resolve, 8000));
    const port = adminPortOf(berth.stderr());
    const heapNow = async () => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return Number(/^berth_heap_used_bytes (\S+)$/m.exec(text)?.[1] ?? "0") / 2 ** 20;
    };
    const heap = await heapNow();
    const row: MemoryRow = {
      volumes,
      rssMiB: memoryOf(berth.pid, "VmRSS"),
      heapMiB: heap,
      afterBurst: null,
    };
    memory.push(row);
    progress(
      `idle, ${volumes} volumes: RSS ${row.rssMiB.toFixed(0)} MiB, heap ${heap.toFixed(1)} MiB`,
    );
    if (volumes === 10_000) {
      // A load burst, then idle again: does the memory come back down?
      const clients = await connectAll(ctx, berth.socket, MAX_CLIENTS);
      failOnErrors(
        await runPhase(
          "burst",
          clients,
          MAX_CLIENTS,
          { seconds: BURST_SECONDS },
          cycleUnit("burst"),
        ),
      );
      closeAll(clients);
      row.afterBurst = [];
      for (const wait of [5000, 10_000]) {
        await new Promise((resolve) => setTimeout(resolve, wait));
        row.afterBurst.push({ rssMiB: memoryOf(berth.pid, "VmRSS"), heapMiB: await heapNow() });
      }
      progress(`after a burst: ${JSON.stringify(row.afterBurst)}`);
    }
    await berth.stop();
  }
  return { curve, memory };
}

export function curveTable(rows: CurveRow[]): string {
  const lines = [
    "| events of history | live volumes | start from | socket ready, ms (each try) | peak RSS, MiB |",
    "| ---: | ---: | --- | --- | ---: |",
  ];
  for (const row of rows) {
    lines.push(
      `| ${row.events.toLocaleString("en")} | ${
        row.volumes.toLocaleString("en")
      } | ${row.from} | ` +
        `${row.readyMs.map((ms) => ms.toFixed(0)).join(" / ")} | ${row.peakMiB.toFixed(0)} |`,
    );
  }
  return lines.join("\n");
}

export function memoryTable(rows: MemoryRow[]): string {
  const base = rows.find((row) => row.volumes === 0);
  const lines = [
    "| idle volumes | RSS, MiB | live heap after GC, MiB | heap per volume, bytes |",
    "| ---: | ---: | ---: | ---: |",
  ];
  const bursts = rows.flatMap((row) =>
    row.afterBurst
      ? [
        `After ${BURST_SECONDS} s of create/mount/unmount/remove cycles at ${MAX_CLIENTS} clients ` +
        `on the ${row.volumes.toLocaleString("en")}-volume Berth: ` +
        row.afterBurst.map((at, i) =>
          `${i === 0 ? "5" : "15"} s later RSS ${at.rssMiB.toFixed(0)} MiB, heap ` +
          `${at.heapMiB.toFixed(1)} MiB`
        ).join("; ") + ".",
      ]
      : []
  );
  for (const row of rows) {
    const per = base && row.volumes > 0
      ? (((row.heapMiB - base.heapMiB) * 2 ** 20) / row.volumes).toFixed(0)
      : "–";
    lines.push(
      `| ${row.volumes.toLocaleString("en")} | ${row.rssMiB.toFixed(0)} | ${
        row.heapMiB.toFixed(1)
      } | ${per} |`,
    );
  }
  return [lines.join("\n"), ...bursts].join("\n\n");
}
