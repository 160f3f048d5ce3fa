// `berth compact`: with Berth stopped, a snapshot of every actor at the end of the log, then the
// snapshots and segments beyond the retention removed — what a running Berth does by itself.
import { DEFAULT_CHECKPOINT_POLICY } from "../engine/checkpoint.ts";
import { compactStateDir } from "../engine/compact.ts";
import { HistoryCompactedError } from "../engine/snapshots.ts";
import { StateDirLockedError } from "../log/lock.ts";
import {
  type Command,
  CommandError,
  diagnose,
  out,
  parseFlags,
  stateDirFrom,
  wholeSetting,
} from "./_command.ts";
import { logDirOf, readingLog } from "./log.ts";

const HELP = `Usage: berth compact [options]

Takes a snapshot of every actor at the end of the log, then keeps the newest K snapshots and the
log since the oldest of them, and deletes the rest: older snapshots, and every segment all of
whose records that oldest kept snapshot covers. Time travel and actor histories then reach back
to the oldest kept snapshot. A running Berth does the same by itself (serve --snapshot-every,
--snapshot-mib, --keep-snapshots); this command is for a stopped one, and takes the state-dir
lock: with Berth running it refuses and changes nothing.

Prints one line: the snapshot's sequence number and actors, and what was removed.

Options:
  --keep-snapshots K how many snapshots to keep (default: ${DEFAULT_CHECKPOINT_POLICY.keep})   [env BERTH_KEEP_SNAPSHOTS]
  --state-dir DIR    the state directory                                 [env BERTH_STATE_DIR]
                     (default: /var/lib/berth)
  -h, --help         show this help
`;

async function compact(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    "keep-snapshots": { type: "string" },
    "state-dir": { type: "string" },
  });
  const keepText = values["keep-snapshots"] ?? Deno.env.get("BERTH_KEEP_SNAPSHOTS") ??
    `${DEFAULT_CHECKPOINT_POLICY.keep}`;
  const keep = wholeSetting(keepText, "--keep-snapshots", 1);
  const stateDir = stateDirFrom(values["state-dir"]);
  await logDirOf(stateDir);
  const done = await readingLog(stateDir, async () => {
    try {
      return await compactStateDir(stateDir, { keep, warn: (line) => diagnose("WARN", line) });
    } catch (error) {
      if (error instanceof StateDirLockedError) {
        throw new CommandError(
          `${error.message}; a running Berth compacts by itself (serve --snapshot-every), ` +
            `stop it to compact by hand`,
        );
      }
      if (error instanceof HistoryCompactedError) throw new CommandError(error.message);
      throw error;
    }
  });
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const snapshot = done.written
    ? `snapshot at sequence ${done.seq} (${plural(done.actors, "actor")}, ${
      mib(done.written.bytes)
    })`
    : `the newest snapshot already covers sequence ${done.seq} (${plural(done.actors, "actor")})`;
  out(
    `compacted: ${snapshot}; removed ${plural(done.pruned.segments.length, "segment")} ` +
      `(${mib(done.freedBytes)}) and ${plural(done.pruned.snapshots.length, "older snapshot")}\n`,
  );
  return 0;
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

export const compactCommand: Command = {
  name: "compact",
  summary: "snapshot every actor and delete the log the snapshots make unneeded",
  help: HELP,
  run: compact,
};
