// `berth repair`: the operator's decision on a damaged end of the log — cut the last segment at a
// record boundary. Takes the state-dir lock (refuses while Berth runs) and says what it cut.
import { join } from "node:path";
import { SymlinkRefusedError } from "../log/file_store.ts";
import { lockStateDir, StateDirLockedError } from "../log/lock.ts";
import { RepairRefusedError, truncateLog } from "../log/repair.ts";
import {
  type Command,
  CommandError,
  out,
  parseFlags,
  sequenceFlag,
  STATE_DIR_HELP,
  stateDirFrom,
  UsageError,
} from "./_command.ts";
import { readingLog } from "./log.ts";

const HELP = `Usage: berth repair --truncate-at OFFSET [options]

Cuts the last segment of the log at byte OFFSET: the record that starts there and every one
after it are deleted for good, and so is any snapshot taken past the new end of the log. Use it
when Berth refuses to start because a record at the end of the log is damaged (a complete record
whose checksum or shape is wrong: Berth never drops one by itself, it may have been
acknowledged). "berth verify" and the refused start name the segment and the byte offset.

Whatever the cut records did is forgotten by Berth: a mount, a volume or an endpoint they made
stays on the host, and the next start's reconcile reports what it finds.

Takes the state-dir lock: with Berth running it refuses and changes nothing. Refuses too when
OFFSET does not start a record, lies outside the last segment, or damage comes before it.

Prints one line: the segment, the offset, the bytes and records cut, the first sequence number
lost, and the snapshots removed.

Options:
  --truncate-at OFFSET  the byte offset in the last segment where the cut starts
${STATE_DIR_HELP}
  -h, --help         show this help
`;

async function repair(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    "truncate-at": { type: "string" },
    "state-dir": { type: "string" },
  });
  const offset = sequenceFlag("truncate-at", values["truncate-at"]);
  if (offset === undefined) throw new UsageError("--truncate-at OFFSET is required");
  const stateDir = stateDirFrom(values["state-dir"]);
  const cut = await readingLog(stateDir, async () => {
    try {
      using _lock = await lockStateDir(stateDir);
      return await truncateLog(join(stateDir, "log"), offset);
    } catch (error) {
      if (error instanceof StateDirLockedError) {
        throw new CommandError(`${error.message}; stop it before repairing its log`);
      }
      if (error instanceof SymlinkRefusedError) throw new CommandError(error.message);
      if (error instanceof RepairRefusedError) {
        throw new CommandError(`Cannot repair the log of ${stateDir}: ${error.message}`);
      }
      throw error;
    }
  });
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  out(
    `repaired: cut ${plural(cut.bytes, "byte")} (${plural(cut.lines, "record")}) from ` +
      `${cut.file} at byte ${cut.offset}; the log now ends at sequence ${cut.fromSeq - 1}` +
      (cut.snapshots.length > 0 ? `; removed ${cut.snapshots.join(", ")}` : "") + "\n",
  );
  return 0;
}

export const repairCommand: Command = {
  name: "repair",
  summary: "cut a damaged end off the log (the operator's decision; takes the lock)",
  help: HELP,
  run: repair,
};
