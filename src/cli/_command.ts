// What every subcommand shares: its shape, how it speaks to the operator, the state-dir flag.
// Stdout carries the command's answer and nothing else; diagnostics go to stderr, one line each.
import { parseArgs, type ParseArgsConfig } from "node:util";

/** One subcommand of `berth`: its help texts and how it runs. */
export type Command = {
  name: string;
  /** One line for `berth help`. */
  summary: string;
  /** The whole text of `berth <name> --help`. */
  help: string;
  /** Runs with the arguments after the command's name; resolves with the exit code. */
  run(args: string[]): Promise<number>;
};

/** A wrong command line: said in one line with a pointer to the help, exit 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A failure the operator can act on: said in one line, exit 1, no stack. */
export class CommandError extends Error {
  override name = "CommandError";
}

const ENCODER = new TextEncoder();

/** Writes `text` to stdout as is. */
export function out(text: string) {
  writeAll(Deno.stdout, ENCODER.encode(text));
}

/** How much is said on stderr: each level includes those before it. */
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = "text" | "json";
type Level = "ERROR" | "WARN" | "INFO" | "DEBUG";

let shown = LOG_LEVELS.indexOf("info");
let format: LogFormat = "text";

/** From now on, only lines at `level` or more severe, as `format`. */
export function setLogging(options: { level?: LogLevel; format?: LogFormat }) {
  if (options.level) shown = LOG_LEVELS.indexOf(options.level);
  if (options.format) format = options.format;
}

/** Whether a line at `level` would be written now. */
export function logs(level: Level): boolean {
  return LOG_LEVELS.indexOf(level.toLowerCase() as LogLevel) <= shown;
}

/**
 * From now on, diagnostics are JSON lines in go-plugin's hclog shape (`@level`, `@message`,
 * `@timestamp`), which a go-plugin host logs at the right level (`berth plugin` under a host).
 */
export function diagnoseAsHclog() {
  format = "json";
}

let infoOnStdout = false;

/**
 * From now on, INFO and DEBUG lines go to stdout: dockerd logs a managed plugin's stdout at level
 * info and its stderr at level error, so only warnings and errors stay on stderr.
 */
export function diagnoseInfoOnStdout() {
  infoOnStdout = true;
}

/** Whether a line at `level` goes to stdout (a managed plugin's INFO and DEBUG). */
function onStdout(level: Level): boolean {
  return infoOnStdout && (level === "INFO" || level === "DEBUG");
}

/**
 * `text` with its control characters written as JSON escapes: a line is one line, and a caller's
 * input in an error (a pool id with a newline or a terminal escape) can neither forge a second
 * line nor drive the operator's terminal.
 */
export function oneLine(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

/** The line for `message`: `[LEVEL] berth: message`, or an hclog JSON line with `fields`. */
function lineOf(level: Level, message: string, fields?: Record<string, unknown>): string {
  return format === "json"
    ? JSON.stringify({
      "@level": level.toLowerCase(),
      "@message": message,
      "@timestamp": hclogTime(new Date()),
      ...fields,
    })
    : `[${level}] berth: ${oneLine(message)}`;
}

/** One diagnostic line, written at once (after the call lines still waiting). */
export function diagnose(level: Level, message: string, fields?: Record<string, unknown>) {
  if (!logs(level)) return;
  flushDiagnostics();
  writeAll(
    onStdout(level) ? Deno.stdout : Deno.stderr,
    ENCODER.encode(`${lineOf(level, message, fields)}\n`),
  );
}

// Lines of answered calls wait here and are written together a moment later: a busy plugin
// socket must not pay one blocking write per call. At most MAX_PENDING wait; past that they
// are counted and the count said instead.
const MAX_PENDING = 4096;
let pending: { out: string[]; err: string[] } = { out: [], err: [] };
let dropped = 0;
let flushing: ReturnType<typeof setTimeout> | undefined;

/** Writes the lines still waiting; callers stop with it (and diagnose() does it first). */
export function flushDiagnostics() {
  clearTimeout(flushing);
  flushing = undefined;
  const { out, err } = pending;
  if (dropped > 0) err.push(`${lineOf("WARN", `${dropped} log lines dropped: stderr is slow`)}\n`);
  pending = { out: [], err: [] };
  dropped = 0;
  if (out.length > 0) writeAll(Deno.stdout, ENCODER.encode(out.join("")));
  if (err.length > 0) writeAll(Deno.stderr, ENCODER.encode(err.join("")));
}

/** A diagnostic about one answered call, written with others a moment later. */
export function diagnoseCall(level: Level, message: string, fields: Record<string, unknown>) {
  if (!logs(level)) return;
  const queue = onStdout(level) ? pending.out : pending.err;
  if (pending.out.length + pending.err.length >= MAX_PENDING) {
    dropped++;
    return;
  }
  queue.push(`${lineOf(level, message, fields)}\n`);
  flushing ??= setTimeout(flushDiagnostics, 10);
}

/** Go's `2006-01-02T15:04:05.000000Z07:00`: hosts take the line as plain text unless exactly so. */
export function hclogTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

function writeAll(stream: { writeSync(bytes: Uint8Array): number }, bytes: Uint8Array) {
  let written = 0;
  while (written < bytes.length) written += stream.writeSync(bytes.subarray(written));
}

export const DEFAULT_STATE_DIR = "/var/lib/berth";

/** The help lines of the flags that the log-reading commands share. */
export const STATE_DIR_HELP =
  `  --state-dir DIR    the state directory to read                      [env BERTH_STATE_DIR]
                     (default: ${DEFAULT_STATE_DIR})`;

/** `parseArgs` that turns its errors into UsageError and refuses stray positionals past `max`. */
export function parseFlags<T extends NonNullable<ParseArgsConfig["options"]>>(
  args: string[],
  options: T,
  maxPositionals = 0,
) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (parsed.positionals.length > maxPositionals) {
    throw new UsageError(`unexpected argument "${parsed.positionals[maxPositionals]}"`);
  }
  return parsed;
}

/** A setting: the flag, else the environment variable `env`, else `fallback`. */
export function setting(flag: string | undefined, env: string, fallback: string): string {
  return flag ?? Deno.env.get(env) ?? fallback;
}

/** The state dir from `--state-dir`, else BERTH_STATE_DIR, else the default. */
export function stateDirFrom(flag: string | undefined): string {
  return flag ?? Deno.env.get("BERTH_STATE_DIR") ?? DEFAULT_STATE_DIR;
}

/** A whole non-negative number from a flag, or a UsageError naming the flag. */
export function sequenceFlag(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,15}$/.test(text)) {
    throw new UsageError(`--${name} "${text}" must be a sequence number (0, 1, 2, …)`);
  }
  return Number(text);
}

/** A whole number setting from `min` up, or a usage error naming the flag. */
export function wholeSetting(text: string, flag: string, min: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min) {
    throw new UsageError(`${flag} "${text}" must be a whole number from ${min}`);
  }
  return value;
}
