// Machine facts for the bench report: CPUs, Deno, the filesystem under the bench directory, and
// what one fdatasync costs there — the floor under every durable reply.
import { join } from "node:path";

/** The mount that holds `path`: the longest mount point that is a prefix of it. */
export function mountOf(path: string): { mountPoint: string; fsType: string; device: string } {
  const real = Deno.realPathSync(path);
  let best = { mountPoint: "/", fsType: "unknown", device: "unknown" };
  for (const line of Deno.readTextFileSync("/proc/mounts").split("\n")) {
    const [device, rawPoint, fsType] = line.split(" ");
    if (!device || !rawPoint || !fsType) continue;
    const mountPoint = rawPoint.replace(/\\040/g, " ");
    const inside = real === mountPoint ||
      real.startsWith(mountPoint.endsWith("/") ? mountPoint : `${mountPoint}/`);
    if (inside && mountPoint.length >= best.mountPoint.length) {
      best = { mountPoint, fsType, device };
    }
  }
  return best;
}

const MEMORY_FILESYSTEMS = new Set(["tmpfs", "ramfs"]);

/**
 * Where the bench puts its sockets and state dirs: $BERTH_BENCH_DIR, else /var/tmp, else /tmp —
 * the first one that is not in memory, since the cost of fdatasync is what Berth pays per reply.
 */
export function pickBenchBase(): string {
  const candidates = [Deno.env.get("BERTH_BENCH_DIR"), "/var/tmp", "/tmp"];
  for (const candidate of candidates) {
    if (!candidate) continue;
    try {
      if (!MEMORY_FILESYSTEMS.has(mountOf(candidate).fsType)) return candidate;
    } catch {
      // missing: try the next one
    }
  }
  throw new Error("No directory on a real disk: set BERTH_BENCH_DIR to one");
}

export type FdatasyncCost = {
  calls: number;
  meanUs: number;
  p50Us: number;
  p99Us: number;
  /** CPU time (user + system) of this process per append + fdatasync. */
  cpuUs: number;
};

/** Times `calls` fdatasyncs of a small file in `dir`, each after appending 128 bytes. */
export function measureFdatasync(dir: string, calls = 1000): FdatasyncCost {
  const path = join(dir, "fdatasync-probe");
  const line = new Uint8Array(128).fill(0x61);
  line[127] = 0x0a;
  const times = new Float64Array(calls);
  using file = Deno.openSync(path, { create: true, append: true });
  for (let i = 0; i < 20; i++) {
    file.writeSync(line);
    file.syncDataSync();
  }
  const cpu0 = cpuSeconds("self");
  for (let i = 0; i < calls; i++) {
    file.writeSync(line);
    const t0 = performance.now();
    file.syncDataSync();
    times[i] = (performance.now() - t0) * 1000;
  }
  const cpuUs = ((cpuSeconds("self") - cpu0) * 1e6) / calls;
  Deno.removeSync(path);
  const sorted = times.slice().sort();
  return {
    calls,
    meanUs: times.reduce((sum, t) => sum + t, 0) / calls,
    p50Us: sorted[Math.floor(calls / 2)]!,
    p99Us: sorted[Math.min(calls - 1, Math.ceil(calls * 0.99) - 1)]!,
    cpuUs,
  };
}

export type MachineFacts = {
  cpus: number;
  cpuModel: string;
  kernel: string;
  deno: string;
  v8: string;
  benchDir: string;
  mount: { mountPoint: string; fsType: string; device: string };
};

/** What the report says about the machine it ran on. */
export function machineFacts(benchDir: string): MachineFacts {
  let cpuModel = "unknown";
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(Deno.readTextFileSync("/proc/cpuinfo"));
    if (match) cpuModel = match[1]!.trim();
  } catch {
    // not Linux
  }
  return {
    cpus: navigator.hardwareConcurrency,
    cpuModel,
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    benchDir,
    mount: mountOf(benchDir),
  };
}

let clockTicks: number | null = null;

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`, 100 if unknown). */
function ticksPerSecond(): number {
  if (clockTicks !== null) return clockTicks;
  try {
    const output = new Deno.Command("getconf", { args: ["CLK_TCK"], stderr: "null" }).outputSync();
    clockTicks = Number(new TextDecoder().decode(output.stdout).trim()) || 100;
  } catch {
    clockTicks = 100;
  }
  return clockTicks;
}

/** User + system CPU seconds used so far by process `pid` ("self" for the bench itself). */
export function cpuSeconds(pid: number | "self"): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the ")" that closes the command name start at field 3 (state).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
}
