// The command table of `berth`: which subcommand runs, and the help that lists them all.
// Each command lives in its own file; this one only picks and maps errors to exit codes.
import {
  type Command,
  CommandError,
  diagnose,
  flushDiagnostics,
  out,
  UsageError,
} from "./_command.ts";
import { compactCommand } from "./compact.ts";
import { graphCommand } from "./graph.ts";
import { historyCommand } from "./history.ts";
import { installServiceCommand } from "./install_service.ts";
import { logCommand } from "./log.ts";
import { pluginCommand } from "./plugin.ts";
import { repairCommand } from "./repair.ts";
import { serveCommand } from "./serve.ts";
import { stateCommand } from "./state.ts";
import { statusCommand } from "./status.ts";
import { verifyCommand } from "./verify.ts";

const COMMANDS: readonly Command[] = [
  serveCommand,
  statusCommand,
  logCommand,
  historyCommand,
  stateCommand,
  verifyCommand,
  compactCommand,
  repairCommand,
  installServiceCommand,
  graphCommand,
  pluginCommand,
];

const BY_NAME = new Map(COMMANDS.map((command) => [command.name, command]));

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length)) + 2;
  const lines = COMMANDS.map((command) => `  ${command.name.padEnd(width)}${command.summary}`);
  return `Berth — a Docker volume, network and IPAM plugin engine whose state survives every crash.

Usage:
  berth [serve] [options]     serve the Docker plugin socket (the default command)
  berth <command> [options]   run another command
  berth help [command]        show help

Commands:
${lines.join("\n")}
  ${"help".padEnd(width)}show this help, or a command's

Run "berth <command> --help" for the options of a command.
`;
}

/** Runs `berth` with `args`; resolves with the exit code once every diagnostic is written. */
export async function main(args: string[]): Promise<number> {
  try {
    return await run(args);
  } finally {
    flushDiagnostics();
  }
}

async function run(args: string[]): Promise<number> {
  const [first, ...rest] = args;
  if (first === "help" || first === "--help" || first === "-h") {
    const topic = first === "help" ? rest[0] : undefined;
    if (topic === undefined) {
      out(mainHelp());
      return 0;
    }
    const command = BY_NAME.get(topic);
    if (!command) {
      diagnose("ERROR", `there is no command "${topic}"; "berth help" lists them`);
      return 2;
    }
    out(command.help);
    return 0;
  }
  // No command, or flags first: serve, as Berth always did.
  const command = first === undefined || first.startsWith("-") ? serveCommand : BY_NAME.get(first);
  if (!command) {
    diagnose("ERROR", `there is no command "${first}"; "berth help" lists them`);
    return 2;
  }
  const commandArgs = command === serveCommand && first !== "serve" ? args : rest;
  if (commandArgs.includes("--help") || commandArgs.includes("-h")) {
    out(command.help);
    return 0;
  }
  try {
    return await command.run(commandArgs);
  } catch (error) {
    if (error instanceof UsageError) {
      diagnose("ERROR", `${error.message}; run "berth ${command.name} --help"`);
      return 2;
    }
    if (error instanceof CommandError) {
      diagnose("ERROR", error.message);
      return 1;
    }
    // A fault of Berth's own: one line for the operator; the stack only when asked for.
    const debug = Deno.env.get("BERTH_DEBUG") === "1";
    const text = error instanceof Error ? (debug ? error.stack : error.message) : String(error);
    diagnose("ERROR", `${text}${debug ? "" : " (BERTH_DEBUG=1 shows where)"}`);
    return 1;
  }
}
