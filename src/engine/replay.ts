// Replay: a pure fold of log records into actor snapshots. Runs no effect and no backend.
import { type AnyMachineSnapshot, type AnyStateMachine, initialTransition } from "xstate";
import { isKindName, KINDS, type MachineKind } from "../../machines/mod.ts";
import type { LogRecord } from "../log/store.ts";
import { step as transition } from "./_transition.ts";

/** Where an actor id comes apart: `volume/db-data` → kind `volume`, name `db-data`. */
export function splitActorId(id: string): { kind: MachineKind; kindName: string; name: string } {
  const slash = id.indexOf("/");
  const kindName = slash === -1 ? id : id.slice(0, slash);
  if (!isKindName(kindName)) throw new Error(`Unknown actor kind "${kindName}" in "${id}"`);
  return { kind: KINDS[kindName], kindName, name: id.slice(slash + 1) };
}

/** Each machine's first snapshot, made once with xstate's initialTransition. */
const FIRST = new Map<AnyStateMachine, AnyMachineSnapshot>();
/** One snapshot per machine and flat state value, resolved once, whose context is swapped. */
const TEMPLATES = new Map<AnyStateMachine, Map<string, AnyMachineSnapshot>>();

/**
 * The snapshot of `machine` in state `value` with `context`: what machine.resolveState gives,
 * without resolving the state nodes again for each actor (a start restoring 100,000 volumes
 * from a snapshot file paid 0.4 s for it). The nodes, tags and history of a state are the same
 * for every actor in it and xstate never changes them in place; only the context differs.
 */
export function snapshotIn(
  machine: AnyStateMachine,
  value: string,
  context: unknown,
): AnyMachineSnapshot {
  let byValue = TEMPLATES.get(machine);
  if (!byValue) TEMPLATES.set(machine, byValue = new Map());
  let template = byValue.get(value);
  if (!template) {
    template = machine.resolveState({ value, context: {} });
    byValue.set(value, template);
  }
  return { ...template, context } as AnyMachineSnapshot;
}

/**
 * A fresh actor's first snapshot: its machine's first state, with the context its factory makes
 * for the actor's name.
 * initialTransition builds a throwaway actor on every call (about 40 µs; a start replaying
 * 100,000 volumes paid 4 s for it); resolveState makes the same snapshot in a few. Safe because
 * no machine has entry actions on its initial state (tests/engine/replay_test.ts pins it).
 */
export function initialSnapshot(id: string): AnyMachineSnapshot {
  const { kind, name } = splitActorId(id);
  const { machine } = kind;
  let first = FIRST.get(machine);
  if (!first) FIRST.set(machine, first = initialTransition(machine, { name: "" })[0]);
  // The machine's own context factory: each machine puts the name where it keeps it.
  const context = (machine.config.context as (args: { input: { name: string } }) => unknown)({
    input: { name },
  });
  return snapshotIn(machine, String(first.value), context);
}

/** A logged record whose event its machine's schema refuses; `seq` says which. */
export class RecordSchemaError extends Error {
  override name = "RecordSchemaError";
  constructor(readonly seq: number, readonly reason: string, message: string) {
    super(message);
  }
}

/** The event a record carries, upcast to its machine's version and checked against its schema. */
export function recordEvent(record: LogRecord): { type: string; at: number } {
  const { kind } = splitActorId(record.actor);
  const { type, data } = upcast(kind, record);
  const parsed = kind.event.safeParse({ ...data, type, at: record.at });
  if (!parsed.success) {
    const issues = parsed.error.issues
      .map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ");
    throw new RecordSchemaError(
      record.seq,
      `${record.actor} ${record.type} does not fit its schema: ${issues}`,
      `Record ${record.seq} (${record.actor} ${record.type}) does not fit its schema: ${issues}`,
    );
  }
  return parsed.data;
}

/**
 * A record's event as the machine of today reads it: a record of an older machine version goes
 * through the kind's upcasters, one version at a time; one of a newer version is refused (a newer
 * Berth wrote it, and this one cannot know what it means).
 */
export function upcast(
  kind: Pick<MachineKind, "version" | "upcasters">,
  record: LogRecord,
): { type: string; data: Record<string, unknown> } {
  const refuse = (why: string) =>
    new RecordSchemaError(record.seq, why, `Record ${record.seq} (${record.actor}): ${why}`);
  if (record.v > kind.version) {
    throw refuse(
      `written by a newer Berth (machine version ${record.v}; this one knows up to ${kind.version})`,
    );
  }
  let event = { type: record.type, data: record.data };
  for (let v = record.v; v < kind.version; v++) {
    const upcaster = kind.upcasters[v - 1];
    if (!upcaster) throw refuse(`no upcaster from machine version ${v} to ${v + 1}`);
    event = upcaster(event);
  }
  return event;
}

/**
 * One record's event applied to `snapshot`: the next snapshot and the actions xstate would run
 * (the intents among them), none of them run. For read models that need more than the fold.
 */
export function stepRecord(
  snapshot: AnyMachineSnapshot,
  record: LogRecord,
): [AnyMachineSnapshot, { type: string }[]] {
  return transition(splitActorId(record.actor).kind.machine, snapshot, recordEvent(record));
}

/** Folds `records` into the snapshots of every live actor; `warn` hears of ignored events. */
export function replay(
  records: Iterable<LogRecord>,
  warn: (message: string) => void = () => {},
): Map<string, AnyMachineSnapshot> {
  const actors = new Map<string, AnyMachineSnapshot>();
  for (const record of records) applyRecord(actors, record, warn);
  return actors;
}

/** How many records replay folds before it lets the event loop run (health checks, signals). */
const SLICE = 4096;

/**
 * The same fold as `replay`, over a sync or async source, giving the event loop a turn every few
 * thousand records: a long replay must not stop the admin endpoint from answering "starting".
 */
export async function replayInSlices(
  records: Iterable<LogRecord> | AsyncIterable<LogRecord>,
  warn: (message: string) => void = () => {},
  into: Map<string, AnyMachineSnapshot> = new Map(),
): Promise<Map<string, AnyMachineSnapshot>> {
  let count = 0;
  for await (const record of records) {
    applyRecord(into, record, warn);
    if (++count % SLICE === 0) await yieldToEventLoop();
  }
  return into;
}

/** One step of the fold: the record's event applied to its actor; a final state forgets it. */
export function applyRecord(
  actors: Map<string, AnyMachineSnapshot>,
  record: LogRecord,
  warn: (message: string) => void,
): AnyMachineSnapshot | null {
  const { kind } = splitActorId(record.actor);
  const event = recordEvent(record);
  const snapshot = actors.get(record.actor) ?? initialSnapshot(record.actor);
  const [stepped] = transition(kind.machine, snapshot, event);
  if (stepped === snapshot) {
    warn(`Replay ignored record ${record.seq}: ${record.type} does not apply to ${record.actor}`);
    return null;
  }
  const next = lean(kind.machine, stepped);
  if (next.status === "done") actors.delete(record.actor);
  else actors.set(record.actor, next);
  return next;
}

/**
 * The same snapshot sharing its state's nodes, tags and history with every other actor in that
 * state: xstate makes new ones on every step (a Set and two arrays, about 300 bytes an actor that
 * stay for as long as it is idle). Only the context is the actor's own.
 */
export function lean(machine: AnyStateMachine, snapshot: AnyMachineSnapshot): AnyMachineSnapshot {
  if (snapshot.status !== "active" || typeof snapshot.value !== "string") return snapshot;
  return snapshotIn(machine, snapshot.value, snapshot.context);
}

/** Resolves on a later turn of the event loop (a macrotask, so I/O and timers run first). */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
