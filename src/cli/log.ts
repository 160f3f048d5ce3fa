// `berth log`: the records of a state dir's log, filtered, or tailed while Berth runs; and the
// helpers the other log-reading commands share. Read-only: never takes the lock, never writes.
import { join } from "node:path";
import { LogDamagedError, SymlinkRefusedError } from "../log/file_store.ts";
import { followLog, listSegments, LogMissingError, readLog } from "../log/reader.ts";
import type { LogRecord } from "../log/store.ts";
import { maskSecrets } from "../inspect/view.ts";
import {
  type Command,
  CommandError,
  out,
  parseFlags,
  sequenceFlag,
  STATE_DIR_HELP,
  stateDirFrom,
} from "./_command.ts";

const HELP = `Usage: berth log [options]

Prints the records of the log in the state directory, oldest first, one per line:
  SEQ  TIME (ISO 8601, UTC)  ACTOR  TYPE  {DATA}
Reads the files only: works with Berth stopped or running, never takes the state-dir lock and
never writes. Option values whose name looks secret (password, token, key, …) are masked.

Options:
  --actor ID         only this actor's records, e.g. volume/db-data
  --type TYPE        only records of this event type, e.g. volume.mount
  --from SEQ         start at this sequence number
  --to SEQ           stop after this sequence number
  --follow           after the last record, keep printing new ones as a running Berth writes
                     them, until SIGINT or SIGTERM (exit 0)
  --json             one JSON object per line: {"seq","at","time","actor","type","v","data"}
${STATE_DIR_HELP}
  -h, --help         show this help

A record being written at the very end of the log (no end of line yet) is not shown. Damage
anywhere else stops with one line naming the segment, byte offset and sequence expected (exit 1);
berth verify checks the whole log.
`;

/** Where the segments of `stateDir` are; a CommandError when it has no log. */
export async function logDirOf(stateDir: string): Promise<string> {
  const dir = join(stateDir, "log");
  return await readingLog(stateDir, async () => {
    if ((await listSegments(dir)).length === 0) {
      throw new CommandError(`Cannot read the log of ${stateDir}: ${dir} holds no segment`);
    }
    return dir;
  });
}

/** Runs `work`, saying in one line (CommandError) why the log of `stateDir` cannot be read. */
export async function readingLog<T>(stateDir: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof LogMissingError) {
      throw new CommandError(`Cannot read the log of ${stateDir}: no log there (${error.message})`);
    }
    if (error instanceof LogDamagedError || error instanceof SymlinkRefusedError) {
      throw new CommandError(error.message);
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new CommandError(`Cannot read the log of ${stateDir}: permission denied`);
    }
    throw error;
  }
}

/**
 * Stdout in blocks: one write per line would cost a system call each on a long log. Once the
 * reader went away (`berth log | head`) the rest is dropped and `closed` says so: no failure.
 */
export function bufferedOut(limit = 64 * 1024) {
  let text = "";
  const output = {
    closed: false,
    write(chunk: string) {
      if (output.closed) return;
      text += chunk;
      if (text.length >= limit) output.flush();
    },
    line(line: string) {
      output.write(line + "\n");
    },
    flush() {
      if (text === "" || output.closed) return;
      const block = text;
      text = "";
      try {
        out(block);
      } catch (error) {
        if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
        output.closed = true;
      }
    },
  };
  return output;
}

/** A record's line: `seq  time  actor  type  {data}`, data masked. */
export function recordLine(record: LogRecord): string {
  const data = JSON.stringify(maskSecrets(record.data));
  return `${record.seq}  ${
    new Date(record.at).toISOString()
  }  ${record.actor}  ${record.type}  ${data}`;
}

function recordJson(record: LogRecord): string {
  const { seq, at, actor, type, v } = record;
  const time = new Date(at).toISOString();
  return JSON.stringify({ seq, at, time, actor, type, v, data: maskSecrets(record.data) });
}

async function log(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    actor: { type: "string" },
    type: { type: "string" },
    from: { type: "string" },
    to: { type: "string" },
    follow: { type: "boolean" },
    json: { type: "boolean" },
    "state-dir": { type: "string" },
  });
  const stateDir = stateDirFrom(values["state-dir"]);
  const from = sequenceFlag("from", values.from);
  const to = sequenceFlag("to", values.to);
  const filters = {
    ...(values.actor === undefined ? {} : { actor: values.actor }),
    ...(values.type === undefined ? {} : { type: values.type }),
    ...(from === undefined ? {} : { from }),
    ...(to === undefined ? {} : { to }),
  };
  const dir = await logDirOf(stateDir);
  const output = bufferedOut();
  const format = values.json ? recordJson : recordLine;
  const controller = new AbortController();
  const stop = () => controller.abort();
  if (values.follow) {
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
  }
  try {
    const records = values.follow
      ? followLog(dir, { ...filters, signal: controller.signal, onIdle: () => output.flush() })
      : readLog(dir, filters);
    await readingLog(stateDir, async () => {
      for await (const record of records) {
        output.line(format(record));
        if (output.closed) break;
      }
    });
    output.flush();
  } catch (error) {
    output.flush(); // the records before the damage, then its line
    throw error;
  } finally {
    if (values.follow) {
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
    }
  }
  return 0;
}

export const logCommand: Command = {
  name: "log",
  summary: "print the log's records (filter by actor, type, range; --follow tails it)",
  help: HELP,
  run: log,
};
