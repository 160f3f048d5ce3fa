// `berth verify`: checks a state dir's whole log — records, segments, and that each event is one
// its machine accepts on replay. Read-only: never takes the lock, never writes or cuts anything.
import { replayCheck } from "../inspect/time_travel.ts";
import { verifyLog, type VerifyResult } from "../log/verify.ts";
import {
  type Command,
  CommandError,
  diagnose,
  out,
  parseFlags,
  STATE_DIR_HELP,
  stateDirFrom,
} from "./_command.ts";
import { logDirOf, readingLog } from "./log.ts";

const HELP = `Usage: berth verify [options]

Reads the whole log of the state directory and checks every segment and record: checksum, shape,
sequence numbers without gap across segments, each segment named for its first record, and that
every event is one its actor's machine accepts when replayed (fits its kind's schema and changes
the actor). Works with Berth stopped or running; never takes the state-dir lock, never writes.

Exit 0 with one line: "ok: N records in M segments, last sequence S, A live actors".
Exit 1 with one line naming the first damage: segment file, byte offset, sequence number, reason.

A torn record at the very end of the last segment (bytes without an end of line: a crash in the
middle of a write, or a write in progress) is not damage: it was never acknowledged, and Berth
cuts it off at its next start. verify says so in a warning line on stderr and exits 0.

Options:
  --json             print one JSON document: {"ok": true, "records", "segments", "bytes",
                     "lastSeq", "actors", "torn"} or {"ok": false, "file", "offset", "seq",
                     "reason"}; the exit code is the same
${STATE_DIR_HELP}
  -h, --help         show this help
`;

async function verify(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    json: { type: "boolean" },
    "state-dir": { type: "string" },
  });
  const stateDir = stateDirFrom(values["state-dir"]);
  const dir = await logDirOf(stateDir);
  const result = await readingLog(stateDir, () => verifyLog(dir, { check: replayCheck() }));
  if (result.ok && result.torn) {
    const { file, offset, bytes } = result.torn;
    diagnose(
      "WARN",
      `torn last record in ${file} at byte ${offset} (${bytes} bytes): never acknowledged; ` +
        `Berth cuts it off at its next start`,
    );
  }
  if (values.json) {
    out(`${JSON.stringify(result)}\n`);
    return result.ok ? 0 : 1;
  }
  out(`${summary(result)}\n`);
  return 0;
}

function summary(result: VerifyResult): string {
  if (!result.ok) {
    throw new CommandError(
      `Cannot verify log: ${result.file} is damaged at byte ${result.offset} ` +
        `(sequence ${result.seq}): ${result.reason}`,
    );
  }
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  return `ok: ${plural(result.records, "record")} in ${plural(result.segments, "segment")}, ` +
    `last sequence ${result.lastSeq}, ${plural(result.actors ?? 0, "live actor")}`;
}

export const verifyCommand: Command = {
  name: "verify",
  summary: "check every record of the log and that its machine accepts it",
  help: HELP,
  run: verify,
};
