// `berth install-service`: Berth as a systemd service that starts before dockerd and is started
// again whenever it exits, with the serve options as Environment= lines; optionally with a
// socket unit, so that systemd holds the plugin socket and dockerd's calls wait in its backlog
// while Berth restarts instead of failing.
import { basename, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Command, CommandError, out, parseFlags, UsageError } from "./_command.ts";
import { parseServe, SERVE_FLAGS } from "./serve.ts";

const DEFAULT_UNIT_DIR = "/etc/systemd/system";

const HELP = `Usage: berth install-service [serve options] [--print] [--unit-dir DIR]
                             [--socket-activation]

Writes the systemd unit berth.service into ${DEFAULT_UNIT_DIR} (or --unit-dir DIR) and prints
what it wrote. The unit runs "berth serve" with the serve options given here as Environment=
lines (BERTH_NAME=..., checked as serve checks them), starts Before=docker.service, and has
Restart=always. Then:

  systemctl daemon-reload && systemctl enable --now berth

Options:
  --print              only print the unit(s), write nothing
  --unit-dir DIR       where to write them (default: ${DEFAULT_UNIT_DIR})
  --socket-activation  also write berth.socket: systemd listens on the plugin socket and hands it
                       to Berth (LISTEN_FDS), so dockerd's calls wait while Berth restarts rather
                       than fail; enable berth.socket too. Deno cannot adopt a descriptor as its
                       own listener, so an inherited socket is served through node:net
  serve options        any option of "berth serve --help"; --name also names the units
                       (berth-NAME.service when it is not "berth")
  -h, --help           show this help
`;

/** A value as a systemd unit file quotes it: inside "…", with \\, " and % escaped. */
export function unitQuoted(value: string): string {
  if (/[\n\r\0]/.test(value)) {
    throw new UsageError("a value with a line break cannot go into a unit");
  }
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/%/g, "%%")}"`;
}

/** The environment variable a serve flag is also read from: --pool-size → BERTH_POOL_SIZE. */
export function envOf(flag: string): string {
  return `BERTH_${flag.toUpperCase().replace(/-/g, "_")}`;
}

/** The command line that runs this Berth: deno run main.ts, or the compiled binary itself. */
function execStart(): string[] {
  const exe = Deno.execPath();
  if (basename(exe) !== "deno") return [exe, "serve"];
  const main = fileURLToPath(new URL("../../main.ts", import.meta.url));
  // --cached-only: at boot Berth starts from the npm packages cached now, never the registry.
  const flags = ["--allow-all", "--cached-only", "--v8-flags=--max-semi-space-size=2"];
  return [exe, "run", ...flags, main, "serve"];
}

export type Units = {
  service: { name: string; text: string };
  socket?: { name: string; text: string };
};

/** The unit files for `settings` (flag → value, as given), for plugin `name` on `socket`. */
export function renderUnits(
  settings: [string, string][],
  options: {
    name: string;
    socket: string;
    socketActivation: boolean;
    exec?: string[];
    /** The Deno cache that holds Berth's npm packages, when not the default one. */
    denoDir?: string;
  },
): Units {
  const base = options.name === "berth" ? "berth" : `berth-${options.name}`;
  // ExecStart also expands $VAR, even inside quotes: a "$" in a path is written "$$".
  const exec = (options.exec ?? execStart()).map((word) =>
    /^[\w@%+=:,./-]+$/.test(word)
      ? word.replace(/%/g, "%%")
      : unitQuoted(word).replace(/\$/g, "$$$$")
  );
  const service = [
    "[Unit]",
    `Description=Berth: Docker volume, network and IPAM plugin "${options.name}"`,
    "Before=docker.service",
    ...(options.socketActivation ? [`Requires=${base}.socket`, `After=${base}.socket`] : []),
    "",
    "[Service]",
    "Type=simple",
    ...(options.denoDir ? [`Environment=${unitQuoted(`DENO_DIR=${options.denoDir}`)}`] : []),
    ...settings.map(([flag, value]) => `Environment=${unitQuoted(`${envOf(flag)}=${value}`)}`),
    `ExecStart=${exec.join(" ")}`,
    "Restart=always",
    "RestartSec=1",
    // A clean stop syncs the log; past this, systemd's SIGKILL loses nothing acknowledged.
    "TimeoutStopSec=30",
    "",
    "[Install]",
    "WantedBy=multi-user.target docker.service",
    "",
  ].join("\n");
  const units: Units = { service: { name: `${base}.service`, text: service } };
  if (options.socketActivation) {
    units.socket = {
      name: `${base}.socket`,
      text: [
        "[Unit]",
        `Description=The plugin socket of Berth "${options.name}"`,
        "Before=docker.service",
        "",
        "[Socket]",
        `ListenStream=${options.socket}`,
        "SocketMode=0660",
        "DirectoryMode=0755",
        "",
        "[Install]",
        "WantedBy=sockets.target",
        "",
      ].join("\n"),
    };
  }
  return units;
}

async function installService(args: string[]): Promise<number> {
  const own = { print: false, "unit-dir": DEFAULT_UNIT_DIR, "socket-activation": false };
  const serveArgs: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--print") own.print = true;
    else if (arg === "--socket-activation") own["socket-activation"] = true;
    else if (arg === "--unit-dir" || arg.startsWith("--unit-dir=")) {
      const value = arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : args[++i];
      if (value === undefined) throw new UsageError("--unit-dir needs a directory");
      own["unit-dir"] = value;
    } else serveArgs.push(arg);
  }
  // Checked as serve checks them; only the options given here go into the unit.
  const config = parseServe(serveArgs);
  const { values } = parseFlags(serveArgs, SERVE_FLAGS);
  const settings = Object.entries(values).filter((entry): entry is [string, string] =>
    typeof entry[1] === "string"
  ).map(([flag, value]) =>
    // Relative paths mean nothing to systemd, which starts Berth in /.
    [
      flag,
      ["state-dir", "volumes-dir", "socket", "config"].includes(flag) && !isAbsolute(value)
        ? resolve(value)
        : value,
    ] as [string, string]
  );
  const units = renderUnits(settings, {
    name: config.name,
    socket: config.socket,
    socketActivation: own["socket-activation"],
    ...(Deno.env.get("DENO_DIR") ? { denoDir: resolve(Deno.env.get("DENO_DIR")!) } : {}),
  });
  const files = [units.service, ...(units.socket ? [units.socket] : [])];
  for (const file of files) {
    const path = join(own["unit-dir"], file.name);
    if (!own.print) {
      try {
        await Deno.mkdir(own["unit-dir"], { recursive: true });
        await Deno.writeTextFile(path, file.text, { mode: 0o644 });
      } catch (error) {
        throw new CommandError(`cannot write ${path}: ${(error as Error).message}`);
      }
    }
    out(`# ${own.print ? "would write" : "wrote"} ${path}\n${file.text}\n`);
  }
  if (!own.print) {
    const enable = units.socket ? `${units.socket.name} ${units.service.name}` : units.service.name;
    out(`# now: systemctl daemon-reload && systemctl enable --now ${enable}\n`);
  }
  return 0;
}

export const installServiceCommand: Command = {
  name: "install-service",
  summary: "write a systemd unit that runs Berth before dockerd (--print: only show it)",
  help: HELP,
  run: installService,
};
