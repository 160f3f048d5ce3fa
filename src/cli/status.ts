// `berth status`: asks a running Berth through its admin endpoint how it is, and says plainly
// when none answers there.
import {
  type AdminAddress,
  AdminAddressError,
  describeAdminAddress,
  parseAdminAddress,
} from "../transport/admin/address.ts";
import { type Command, CommandError, out, parseFlags, UsageError } from "./_command.ts";

const HELP = `Usage: berth status [options]

Asks a running Berth, through its admin endpoint, for its pid, uptime, log size, last sequence
number and how many actors stand in each state. Exit 0 when it answers and is ready; exit 1, with
one line saying why, when no Berth answers there or it is still starting.

Options:
  --name NAME     the plugin name of the Berth to ask (default: berth)         [env BERTH_NAME]
  --admin ADDR    its admin endpoint instead: a socket path or 127.0.0.1:PORT  [env BERTH_ADMIN]
                  (default: /run/berth/NAME.sock, as berth serve uses)
  --json          print the answer as one JSON object
  -h, --help      show this help
`;

type Status = {
  pid: number;
  startedAt: string;
  uptimeSeconds: number;
  lastSeq: number;
  logBytes: number;
  replaySeconds: number;
  reconcileSeconds: number;
  startSnapshotSeq: number;
  replayedRecords: number;
  snapshotSeq: number;
  snapshotAt: string | null;
  snapshotFailures: number;
  actors: Record<string, Record<string, number>>;
};

async function ask(address: AdminAddress, path: string): Promise<Response> {
  if (address.transport === "tcp") {
    return await fetch(`${describeAdminAddress(address)}${path}`);
  }
  using client = Deno.createHttpClient({ proxy: { transport: "unix", path: address.path } });
  const response = await fetch(`http://localhost${path}`, { client });
  // Read it while the client is open.
  const body = await response.arrayBuffer();
  return new Response(body, { status: response.status, headers: response.headers });
}

async function status(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    name: { type: "string" },
    admin: { type: "string" },
    json: { type: "boolean" },
  });
  const name = values.name ?? Deno.env.get("BERTH_NAME") ?? "berth";
  const text = values.admin ?? Deno.env.get("BERTH_ADMIN") ?? `/run/berth/${name}.sock`;
  let address: AdminAddress;
  try {
    address = parseAdminAddress(text);
  } catch (error) {
    if (error instanceof AdminAddressError) throw new UsageError(error.message);
    throw error;
  }
  const where = describeAdminAddress(address);
  let response: Response;
  try {
    response = await ask(address, "/api/status");
  } catch {
    throw new CommandError(`No Berth is running: nothing answers on ${where}`);
  }
  if (response.status === 503) {
    throw new CommandError(`Berth is starting: it is replaying its log (asked ${where})`);
  }
  if (!response.ok) {
    throw new CommandError(
      `Berth on ${where} answered ${response.status}: ${await response.text()}`,
    );
  }
  const answer = await response.json() as Status;
  out(values.json ? `${JSON.stringify(answer)}\n` : describe(answer, where));
  return 0;
}

function describe(status: Status, where: string): string {
  const lines = [
    `Berth is running on ${where}: pid ${status.pid}, up ${duration(status.uptimeSeconds)} ` +
    `(since ${status.startedAt})`,
    `log: ${status.lastSeq} events, ${bytes(status.logBytes)}`,
    `start: replay ${status.replaySeconds.toFixed(3)} s (` +
    (status.startSnapshotSeq > 0 ? `snapshot at ${status.startSnapshotSeq} + ` : "") +
    `${status.replayedRecords} records), reconcile ${status.reconcileSeconds.toFixed(3)} s`,
    (status.snapshotSeq === 0
      ? "snapshots: none yet"
      : `snapshots: newest at sequence ${status.snapshotSeq}` +
        (status.snapshotAt ? ` (taken ${status.snapshotAt})` : " (read at start)")) +
    (status.snapshotFailures > 0 ? `; ${status.snapshotFailures} could not be written` : ""),
    "actors:",
  ];
  for (const [kind, states] of Object.entries(status.actors)) {
    const entries = Object.entries(states);
    const total = entries.reduce((sum, [, count]) => sum + count, 0);
    const detail = entries.map(([state, count]) => `${state} ${count}`).join(", ");
    lines.push(`  ${kind.padEnd(9)} ${String(total).padStart(6)}${detail ? `  (${detail})` : ""}`);
  }
  return lines.join("\n") + "\n";
}

function duration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${s}s` : `${s}s`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export const statusCommand: Command = {
  name: "status",
  summary: "ask a running Berth how it is: uptime, actors by state, log size",
  help: HELP,
  run: status,
};
