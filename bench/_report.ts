// Markdown tables for the bench results.
import type { FdatasyncCost, MachineFacts } from "./_machine.ts";
import { percentile, type PhaseResult } from "./_workloads.ts";

/** A throughput row: a phase on one server plus the log records it made durable (if known). */
export type ThroughputRow = {
  server: string;
  phase: PhaseResult;
  records: number | null;
  /** CPU seconds the server and the bench (the clients) used during the phase. */
  serverCpu: number;
  clientCpu: number;
};

/** A start-time row: milliseconds from spawn to the first accepted connection, per try. */
export type StartRow = { label: string; events: number; readyMs: number[]; stopMs: number[] };

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

function fixed(value: number, digits = 0): string {
  return Number.isFinite(value) ? value.toFixed(digits) : "–";
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

/** `docker run` wall times on one network, in milliseconds, in the order they ran. */
export type DockerRunRow = { network: string; driver: string; ms: number[] };

/** A column that turns calls/s into units/s (`pairs/s` = calls/s ÷ 2). */
export type UnitColumn = { label: string; callsPerUnit: number };

export function throughputTable(rows: ThroughputRow[], unit?: UnitColumn): string {
  const units = (phase: PhaseResult) =>
    unit === undefined ? [] : [fixed(phase.calls / unit.callsPerUnit / phase.seconds)];
  return table(
    [
      "server",
      "workload",
      "clients",
      "calls",
      "errors",
      "seconds",
      "calls/s",
      ...(unit === undefined ? [] : [unit.label]),
      "records/s",
      "records/call",
      "p50 µs",
      "p99 µs",
      "max µs",
      "server CPU µs/call",
      "client CPU µs/call",
    ],
    rows.map(({ server, phase, records, serverCpu, clientCpu }) => [
      server,
      phase.workload,
      String(phase.clients),
      String(phase.calls),
      String(phase.errors),
      fixed(phase.seconds, 2),
      fixed(phase.calls / phase.seconds),
      ...units(phase),
      records === null ? "–" : fixed(records / phase.seconds),
      records === null ? "–" : fixed(records / phase.calls, 2),
      fixed(percentile(phase.latenciesUs, 50)),
      fixed(percentile(phase.latenciesUs, 99)),
      fixed(phase.latenciesUs.at(-1) ?? NaN),
      fixed((serverCpu * 1e6) / phase.calls),
      fixed((clientCpu * 1e6) / phase.calls),
    ]),
  );
}

function versus(value: number, reference: number): string {
  const delta = value - reference;
  return `${delta < 0 ? "−" : "+"}${fixed(Math.abs(delta))} ms (${fixed(value / reference, 2)}×)`;
}

export function dockerRunTable(rows: DockerRunRow[]): string {
  const reference = rows.find((row) => row.driver === "Docker bridge");
  return table(
    ["network", "driver", "runs", "median ms", "p90 ms", "min ms", "max ms", "median vs bridge"],
    rows.map((row) => [
      row.network,
      row.driver,
      String(row.ms.length),
      fixed(median(row.ms)),
      fixed(percentile(Float64Array.from(row.ms).sort(), 90)),
      fixed(Math.min(...row.ms)),
      fixed(Math.max(...row.ms)),
      reference === undefined ? "–" : versus(median(row.ms), median(reference.ms)),
    ]),
  );
}

export function startTable(rows: StartRow[]): string {
  return table(
    ["state dir", "log events", "spawn → accepting, median ms", "tries ms", "SIGTERM → exit ms"],
    rows.map((row) => [
      row.label,
      String(row.events),
      fixed(median(row.readyMs)),
      row.readyMs.map((ms) => fixed(ms)).join(", "),
      row.stopMs.map((ms) => fixed(ms)).join(", "),
    ]),
  );
}

export function machineTable(facts: MachineFacts, fsync: FdatasyncCost, go: string): string {
  return table(["fact", "value"], [
    ["CPUs (nproc)", `${facts.cpus} × ${facts.cpuModel}`],
    ["kernel", facts.kernel],
    ["deno", `${facts.deno} (V8 ${facts.v8})`],
    ["bench dir", `${facts.benchDir} on ${facts.mount.device} (${facts.mount.fsType})`],
    [
      "fdatasync (128 B append, then sync)",
      `mean ${fixed(fsync.meanUs)} µs, p50 ${fixed(fsync.p50Us)} µs, p99 ${
        fixed(fsync.p99Us)
      } µs ` +
      `over ${fsync.calls} calls; ${fixed(fsync.cpuUs)} µs CPU per append + sync`,
    ],
    ["go", go],
  ]);
}
