// `berth verify`: checks a state dir's whole log — records, segments, and that each event is one
// its machine accepts on replay. Read-only: never takes the lock, never writes or cuts anything.
import { materialize } from "../engine/snapshots.ts";
import { firstSeqOf } from "../inspect/history.ts";
import { type CheckedSnapshot, replayCheck } from "../inspect/time_travel.ts";
import { listSegments } from "../log/reader.ts";
import { listSnapshots, SnapshotDamagedError } from "../log/snapshot_file.ts";
import { type VerifyDamage, verifyLog, type VerifyResult } from "../log/verify.ts";
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
the actor). Checks every snapshot too: each line's checksum, its count and end line, that today's
machines can restore it, and that it holds exactly what the log replays to at its sequence number
(when the log still reaches back there). After compaction, replay starts from the oldest
snapshot the log joins on to. Works with Berth stopped or running; never takes the state-dir
lock, never writes.

Exit 0 with one line: "ok: N records in M segments, last sequence S, A live actors, K snapshots".
Exit 1 with one line naming the first damage: segment or snapshot file, byte offset, sequence
number, reason.

A complete record (ending in an end of line) that is damaged is damage wherever it lies, the end
of the log included: it may have been acknowledged, so Berth refuses to start rather than drop it.
Deciding to lose it is the operator's: berth repair --truncate-at OFFSET cuts the log there.

A torn record at the very end of the last segment (bytes without an end of line: a crash in the
middle of a write, or a write in progress) is not damage: it was never acknowledged, and Berth
cuts it off at its next start. verify says so in a warning line on stderr and exits 0.

Options:
  --json             print one JSON document: {"ok": true, "records", "segments", "bytes",
                     "lastSeq", "actors", "torn", "snapshots": [{file, seq, actors}]} or {"ok": false, "file", "offset", "seq",
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
  const result: VerifyResult & { snapshots?: SnapshotSummary[] } = await readingLog(
    stateDir,
    async () => {
      const snapshots = await readSnapshots(dir);
      if (!Array.isArray(snapshots)) return snapshots;
      const firstSeq = await firstSeqOf(dir);
      // After compaction, replay starts from the oldest snapshot the log joins on to.
      const base = firstSeq > 1
        ? snapshots.find((snapshot) => snapshot.seq + 1 >= firstSeq) ?? null
        : null;
      if (firstSeq > 1 && !base) {
        return {
          ok: false as const,
          file: (await listSegments(dir))[0]!.path,
          offset: 0,
          seq: firstSeq,
          reason: `the log starts at sequence ${firstSeq} and no snapshot covers what came before`,
        };
      }
      const verified = await verifyLog(dir, { check: replayCheck(base, snapshots) });
      if (verified.ok) {
        const past = snapshots.find((snapshot) => snapshot.seq > verified.lastSeq);
        if (past) {
          return {
            ok: false as const,
            file: past.path,
            offset: 0,
            seq: past.seq,
            reason: `snapshot is past the end of the log (sequence ${verified.lastSeq})`,
          };
        }
      }
      return verified.ok ? { ...verified, snapshots: snapshots.map(summaryOf) } : verified;
    },
  );
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

type SnapshotSummary = { file: string; seq: number; actors: number };

function summaryOf(snapshot: CheckedSnapshot): SnapshotSummary {
  return { file: snapshot.path, seq: snapshot.seq, actors: snapshot.actors.size };
}

/** Every snapshot read whole and restored, oldest first, or the first damage found. */
async function readSnapshots(dir: string): Promise<CheckedSnapshot[] | VerifyDamage> {
  const checked: CheckedSnapshot[] = [];
  const files = await listSnapshots(dir);
  for (const file of files) {
    const { path, seq } = file;
    try {
      // A delta is checked as the state it stands for: laid over every snapshot it builds on.
      checked.push({ path, seq, actors: (await materialize(file, files)).actors });
    } catch (error) {
      if (error instanceof SnapshotDamagedError) {
        return { ok: false, file: path, offset: error.offset, seq, reason: error.reason };
      }
      return { ok: false, file: path, offset: 0, seq, reason: (error as Error).message };
    }
  }
  return checked;
}

function summary(result: VerifyResult & { snapshots?: SnapshotSummary[] }): string {
  if (!result.ok) {
    throw new CommandError(
      `Cannot verify log: ${result.file} is damaged at byte ${result.offset} ` +
        `(sequence ${result.seq}): ${result.reason}`,
    );
  }
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const snapshots = result.snapshots ?? [];
  return `ok: ${plural(result.records, "record")} in ${plural(result.segments, "segment")}, ` +
    `last sequence ${result.lastSeq}, ${plural(result.actors ?? 0, "live actor")}, ` +
    plural(snapshots.length, "snapshot") +
    (snapshots.length > 0 ? ` (newest at sequence ${snapshots.at(-1)!.seq})` : "");
}

export const verifyCommand: Command = {
  name: "verify",
  summary: "check every record of the log and that its machine accepts it",
  help: HELP,
  run: verify,
};
