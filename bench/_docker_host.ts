// What the docker run phase reads back from Berth's log: the links Berth made on the host (to
// remove any it left behind) and how long its veth effects took during the timed runs.
import { join } from "node:path";

type LogLine = {
  seq: number;
  at: number;
  actor: string;
  type: string;
  data: { [k: string]: unknown };
};

// Only names of these shapes are ever deleted: Berth's links and the bridge of Docker's `dn`.
const REMOVABLE_REGEXP = /^(bth[0-9a-z]{1,12}|br-[0-9a-f]{12})$/;

async function readLog(stateDir: string): Promise<LogLine[]> {
  const dir = join(stateDir, "log");
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name.endsWith(".log")) names.push(entry.name);
    }
  } catch {
    return [];
  }
  const records: LogLine[] = [];
  for (const name of names.sort()) {
    for (const line of (await Deno.readTextFile(join(dir, name))).split("\n")) {
      try {
        records.push(JSON.parse(line) as LogLine);
      } catch {
        // empty last line, or a torn record
      }
    }
  }
  return records;
}

async function ip(args: string[]): Promise<boolean> {
  const out = await new Deno.Command("ip", { args, stdin: "null", stdout: "null", stderr: "null" })
    .output();
  return out.success;
}

/**
 * Deletes every link Berth's log names (bridges, both ends of each veth) and Docker's bridge of
 * network `bridgeId` that still exists on the host; returns their names. After a clean run: none.
 */
export async function removeLeftoverLinks(stateDir: string, bridgeId: string): Promise<string[]> {
  const names = new Set<string>();
  if (bridgeId !== "") names.add(`br-${bridgeId.slice(0, 12)}`);
  for (const record of await readLog(stateDir)) {
    for (const key of ["bridge", "host", "peer"]) {
      const value = record.data?.[key];
      if (typeof value === "string") names.add(value);
    }
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!REMOVABLE_REGEXP.test(name) || !await ip(["link", "show", "dev", name])) continue;
    if (await ip(["link", "del", "dev", name])) removed.push(name);
  }
  return removed;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

/** Milliseconds from each `start` event of an endpoint to the effect outcome that follows it. */
function effectTimes(records: LogLine[], start: string): number[] {
  const open = new Map<string, number>();
  const times: number[] = [];
  for (const record of records) {
    if (!record.actor.startsWith("endpoint/")) continue;
    if (record.type === start) open.set(record.actor, record.at);
    else if (record.type.startsWith("effect.") && open.has(record.actor)) {
      times.push(record.at - open.get(record.actor)!);
      open.delete(record.actor);
    }
  }
  return times;
}

/** The log after `afterSeq`: its last seq, and a note on what Berth did per timed run. */
export async function berthRunBreakdown(stateDir: string, afterSeq: number) {
  const records = (await readLog(stateDir)).filter((record) => record.seq > afterSeq);
  const lastSeq = records.at(-1)?.seq ?? afterSeq;
  const create = effectTimes(records, "endpoint.join");
  const remove = effectTimes(records, "endpoint.delete");
  const failed = records.filter((record) => record.type === "effect.failed").length;
  return {
    lastSeq,
    summary(runs: number): string {
      const types = new Map<string, number>();
      for (const record of records) types.set(record.type, (types.get(record.type) ?? 0) + 1);
      const perRun = [...types].map(([type, count]) => `${type} ×${(count / runs).toFixed(1)}`);
      return `Berth's log during the ${runs} timed runs on bn: ${records.length} records ` +
        `(${perRun.join(", ")} per run; ${failed} effect.failed). Join → veth made: median ` +
        `${median(create)} ms; DeleteEndpoint → veth gone: median ${median(remove)} ms ` +
        `(record timestamps, 1 ms resolution; each includes the first record's fdatasync).`;
    },
  };
}
