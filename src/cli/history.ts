// `berth history <kind>/<name>`: one actor's events from the log, the state after each and what
// became of it; for a volume, who holds it. Read-only: never takes the lock, never writes.
import { isKindName, KINDS } from "../../machines/mod.ts";
import { type HistoryEnd, historyEntries, type HistoryEntry } from "../inspect/history.ts";
import { HistoryCompactedError, historyStart } from "../engine/snapshots.ts";
import { firstSeqOf } from "../inspect/history.ts";
import { type ActorView, actorView } from "../inspect/view.ts";
import { readLog } from "../log/reader.ts";
import {
  type Command,
  CommandError,
  parseFlags,
  STATE_DIR_HELP,
  stateDirFrom,
  UsageError,
} from "./_command.ts";
import { bufferedOut, logDirOf, readingLog } from "./log.ts";

const KIND_LIST = Object.keys(KINDS).join(", ");

const HELP = `Usage: berth history <kind>/<name> [options]

Prints every event of one actor (${KIND_LIST}), e.g. volume/db-data, from the log of the state
directory, one per line:
  SEQ  TIME  TYPE  {DATA}  STATE BEFORE -> STATE AFTER  OUTCOME
OUTCOME is "applied", "ignored", or for an event that asked for an effect that effect's result:
"succeeded", "failed: <reason>" or "in flight" (no outcome logged yet). An actor removed and
created again shows all its lives. A last line gives the actor now; for a volume that mount IDs
still hold, one more line lists them and since when (why docker volume rm is refused).
Reads the files only: works with Berth stopped or running, never takes the state-dir lock.
Option values whose name looks secret are masked.

When compaction removed the start of the log, a first line gives the actor as the oldest kept
snapshot has it, and the events from there on follow.

Options:
  --json             print one JSON document: {"entries": [...], "actor", "holders"}, with
                     "compactedBefore" and "start" first when the log was compacted
${STATE_DIR_HELP}
  -h, --help         show this help

Exit 1 with one line when the actor has no event in the log, or the log cannot be read.
`;

function actorIdFrom(positionals: string[]): string {
  const id = positionals[0];
  if (id === undefined) throw new UsageError("which actor? give <kind>/<name>, e.g. volume/db");
  const slash = id.indexOf("/");
  const kind = slash === -1 ? id : id.slice(0, slash);
  if (slash === -1 || slash === id.length - 1 || !isKindName(kind)) {
    throw new UsageError(
      `"${id}" is not an actor: give <kind>/<name> with kind one of ${KIND_LIST}`,
    );
  }
  return id;
}

async function history(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    json: { type: "boolean" },
    "state-dir": { type: "string" },
  }, 1);
  const id = actorIdFrom(positionals);
  const stateDir = stateDirFrom(values["state-dir"]);
  const dir = await logDirOf(stateDir);
  const output = bufferedOut();
  const json = values.json ?? false;
  const shown = await readingLog(stateDir, async () => {
    const start = await historyStart(dir, await firstSeqOf(dir), id).catch((error) => {
      throw error instanceof HistoryCompactedError ? new CommandError(error.message) : error;
    });
    const from = (start?.seq ?? 0) + 1;
    const fold = historyEntries(readLog(dir, { actor: id, from }), id, start?.snapshot ?? null);
    const compacted = start && { from, actor: start.snapshot && actorView(id, start.snapshot) };
    return await show(fold, { id, json, output, compacted });
  }).finally(() => output.flush());
  if (!shown) throw new CommandError(`Cannot show history of ${id}: no event of it in ${stateDir}`);
  return 0;
}

type Show = {
  id: string;
  json: boolean;
  output: ReturnType<typeof bufferedOut>;
  /** When compaction removed the start of the log: where the history resumes, the actor then. */
  compacted: { from: number; actor: ActorView | null } | null;
};

/**
 * Prints entries as they come, so a long history needs no more memory than a short one: in JSON
 * too, one document written piece by piece. False, with nothing printed, when there is none.
 */
async function show(
  fold: AsyncGenerator<HistoryEntry, HistoryEnd>,
  { id, json, output, compacted }: Show,
): Promise<boolean> {
  let next = await fold.next();
  if (next.done && !compacted?.actor) return false;
  if (json) {
    const head = compacted
      ? `"compactedBefore":${compacted.from},"start":${JSON.stringify(compacted.actor)},`
      : "";
    output.write(`{${head}"entries":[`);
  } else if (compacted) {
    const then = compacted.actor
      ? `${compacted.actor.state}  ${JSON.stringify(compacted.actor.context)}`
      : "does not exist";
    output.line(`before sequence ${compacted.from} (compacted, from the snapshot): ${id} ${then}`);
  }
  for (let first = true; !next.done; next = await fold.next(), first = false) {
    if (json) output.write(`${first ? "" : ","}${JSON.stringify(next.value)}`);
    else output.line(entryLine(next.value));
  }
  const { actor, holders } = next.value;
  if (json) output.line(`],"actor":${JSON.stringify(actor)},"holders":${JSON.stringify(holders)}}`);
  else closingLines(id, next.value, output.line);
  return true;
}

function entryLine(entry: HistoryEntry): string {
  const time = new Date(entry.at).toISOString();
  return `${entry.seq}  ${time}  ${entry.type}  ${JSON.stringify(entry.data)}  ` +
    `${entry.from} -> ${entry.state}  ${entry.outcome}`;
}

function closingLines(id: string, { actor, holders }: HistoryEnd, line: (text: string) => void) {
  line(
    actor
      ? `now: ${id} is ${actor.state}  ${JSON.stringify(actor.context)}`
      : `now: ${id} does not exist`,
  );
  if (holders.length > 0) {
    const list = holders.map((holder) =>
      `${holder.mountId}${holder.count > 1 ? ` (x${holder.count})` : ""} since ` +
      (holder.seq === 0
        ? "before the compacted history"
        : `${new Date(holder.since).toISOString()} (seq ${holder.seq})`)
    );
    const s = holders.length === 1 ? "" : "s";
    line(`held by ${holders.length} mount ID${s}: ${list.join(", ")}`);
  }
}

export const historyCommand: Command = {
  name: "history",
  summary: "show one actor's events, the state after each and their outcomes",
  help: HELP,
  run: history,
};
