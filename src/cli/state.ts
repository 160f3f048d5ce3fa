// `berth state [--at SEQ]`: every actor as it stood right after a record of the log (time travel),
// or now. Replays the log's prefix; read-only: never takes the lock, never writes.
import { isKindName, KINDS } from "../../machines/mod.ts";
import { SequencePastEndError, timeTravel } from "../inspect/time_travel.ts";
import { HistoryCompactedError } from "../engine/snapshots.ts";
import {
  type Command,
  CommandError,
  parseFlags,
  sequenceFlag,
  STATE_DIR_HELP,
  stateDirFrom,
  UsageError,
} from "./_command.ts";
import { bufferedOut, logDirOf, readingLog } from "./log.ts";

const KIND_LIST = Object.keys(KINDS).join(", ");

const HELP = `Usage: berth state [options]

Prints every actor as it stood right after record SEQ of the log — or after the last record —
from the newest snapshot before SEQ and the log from there to SEQ, sorted by id: a first line "as of sequence S: N actors", then
one line per actor:
  ID  STATE  {CONTEXT}
Reads the files only: works with Berth stopped or running, never takes the state-dir lock and
never writes. Option values whose name looks secret are masked.

Options:
  --at SEQ           the state right after record SEQ (0: before the first); default: now
  --kind KIND        only actors of this kind (${KIND_LIST})
  --json             print one JSON document: {"at": S, "actors": [{id, kind, name, state,
                     status, context}, …]}
${STATE_DIR_HELP}
  -h, --help         show this help

Exit 1 with one line when SEQ is past the end of the log, lies before what compaction kept
(the oldest kept snapshot), or the log cannot be read.
`;

async function state(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    at: { type: "string" },
    kind: { type: "string" },
    json: { type: "boolean" },
    "state-dir": { type: "string" },
  });
  const at = sequenceFlag("at", values.at);
  const kind = values.kind;
  if (kind !== undefined && !isKindName(kind)) {
    throw new UsageError(`--kind "${kind}" is not a kind: give one of ${KIND_LIST}`);
  }
  const stateDir = stateDirFrom(values["state-dir"]);
  const dir = await logDirOf(stateDir);
  const travelled = await readingLog(stateDir, async () => {
    try {
      return await timeTravel(dir, at);
    } catch (error) {
      if (error instanceof SequencePastEndError || error instanceof HistoryCompactedError) {
        throw new CommandError(error.message);
      }
      throw error;
    }
  });
  const actors = kind === undefined
    ? travelled.actors
    : travelled.actors.filter((view) => view.kind === kind);
  const output = bufferedOut();
  if (values.json) {
    output.line(JSON.stringify({ at: travelled.seq, actors }));
  } else {
    output.line(
      `as of sequence ${travelled.seq}: ${actors.length} actor${actors.length === 1 ? "" : "s"}`,
    );
    for (const view of actors) {
      output.line(`${view.id}  ${view.state}  ${JSON.stringify(view.context)}`);
    }
  }
  output.flush();
  return 0;
}

export const stateCommand: Command = {
  name: "state",
  summary: "show every actor as it stood at a sequence number (time travel), or now",
  help: HELP,
  run: state,
};
