// Reconcile, the engine's start-up look at the host: one survey per kind, every actor checked
// against it outside its mailbox, and only the drift repaired, through the mailbox like any
// command (the engine hands in `repair`).
import type { Effects, EventFields } from "./effects.ts";
import type { Actor } from "./_actor.ts";
import { inBatches } from "./_in_batches.ts";

/** What reconcile recorded, per actor that drifted. */
export type ReconcileReport = { actor: string; events: string[] }[];

/** How many volumes are repaired at once (each repair may run an effect). */
const RECONCILE_AT_ONCE = 64;

export type ReconcileParts = {
  effectsFor(actor: Actor): Effects;
  /** Records `events` for `actor` through its mailbox; returns the types recorded. */
  repair(actor: Actor, events: EventFields[]): Promise<string[]>;
  warn(message: string): void;
};

/** Checks `all` against the host and repairs what drifted; the report is sorted by actor. */
export async function reconcileActors(
  all: Actor[],
  parts: ReconcileParts,
): Promise<ReconcileReport> {
  const { effectsFor } = parts;
  const report: ReconcileReport = [];
  // One look at the host per kind, all at once, before any actor is checked.
  const kinds = [...new Set(all.map((actor) => actor.kindName))];
  const surveys = new Map(
    await Promise.all(
      kinds.map(async (kind) =>
        [kind, await effectsFor(all.find((a) => a.kindName === kind)!).survey()] as const
      ),
    ),
  );
  // No command is queued yet: the checks read the snapshots directly.
  const check = (actor: Actor) =>
    effectsFor(actor).reconcile(actor.id, actor.snapshot, surveys.get(actor.kindName));
  const repair = async (actor: Actor, events: EventFields[]) => {
    if (events.length === 0) return;
    const found = await parts.repair(actor, events);
    if (found.length > 0) report.push({ actor: actor.id, events: found });
  };
  // Volumes stand alone: all are checked at once, and many repaired at once (a repair may run an
  // effect). Networks before their endpoints, one by one in log order: an endpoint's repair needs
  // its bridge.
  const volumes = all.filter((actor) => actor.kindName === "volume");
  const found = await Promise.all(volumes.map(check));
  const drift = volumes.flatMap((_, i) => found[i]!.length > 0 ? [i] : []);
  await inBatches(drift, RECONCILE_AT_ONCE, (i) => repair(volumes[i]!, found[i]!));
  for (const actor of all) {
    if (actor.kindName !== "volume") await repair(actor, await check(actor));
  }
  return report.sort((a, b) => (a.actor < b.actor ? -1 : a.actor > b.actor ? 1 : 0));
}
