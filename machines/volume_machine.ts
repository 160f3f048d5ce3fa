// The volume machine: which volume events are allowed when, and what they change.
// Pure: xstate, zod and immutable (persistent maps) only. Time and ids arrive inside events; work
// leaves as intents.
import { assertEvent, assign, emit, setup, type SnapshotFrom } from "xstate";
import { Map as PersistentMap } from "immutable";
import { z } from "zod";
import { StringMap } from "./wire_map.ts";
import type { VolumeIntent } from "./intents.ts";

/**
 * Bumped whenever the shape of a volume event changes, with an upcaster in mod.ts that turns the
 * records of the version before into this one (replay upcasts old records as it reads them).
 */
export const VOLUME_MACHINE_VERSION = 1;

const at = z.number().int().nonnegative();

/** Docker's rule for volume names (what the plugin socket accepts). */
export const VOLUME_NAME_REGEXP = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export const VolumeEvent = z.discriminatedUnion("type", [
  // `node`: on a log several Berths share, the node that made it (whose host holds its data).
  z.object({
    type: z.literal("volume.create"),
    opts: StringMap,
    node: z.string().max(64).optional(),
    at,
  }),
  z.object({ type: z.literal("volume.mount"), mountId: z.string().min(1), at }),
  z.object({ type: z.literal("volume.unmount"), mountId: z.string().min(1), at }),
  z.object({ type: z.literal("volume.remove"), at }),
  z.object({ type: z.literal("volume.vanished"), reason: z.string(), at }),
  z.object({ type: z.literal("volume.reappeared"), at }),
  z.object({ type: z.literal("effect.succeeded"), mountpoint: z.string().optional(), at }),
  z.object({ type: z.literal("effect.failed"), reason: z.string(), at }),
]);
export type VolumeEvent = z.infer<typeof VolumeEvent>;

export type VolumeContext = {
  name: string;
  opts: Record<string, string>;
  /** On a log several Berths share: the node that made it; absent on one host. */
  node?: string;
  /** Milliseconds since the epoch, from the `volume.create` event. */
  createdAt: number;
  /** Where the backend keeps the data; "" until creation succeeded. */
  mountpoint: string;
  /**
   * Mount ID → how many Mounts without Unmount it holds (dockerd repeats IDs). A persistent map:
   * each event shares all but a few nodes with the context before it, so a volume held by 10,000
   * IDs costs what an idle one does per Mount, and earlier snapshots stay as they were. Its JSON
   * is a plain object of counts.
   */
  mounts: MountCounts;
  /** How many Mounts are held in all: the sum of `mounts`, kept so that no guard sums it. */
  held: number;
  /** The mount ID whose Mount or Unmount is in flight. */
  pending: string | null;
  /** Why the volume is `missing`, or why the last effect failed. */
  problem: string | null;
};

/** Mount ID → count; a Map, so "toString" or "__proto__" is a mount ID like any other (rule 8). */
export type MountCounts = PersistentMap<string, number>;

const NO_MOUNTS: MountCounts = PersistentMap<string, number>();

export function totalMounts(context: VolumeContext): number {
  return context.held;
}

function holds(context: VolumeContext, mountId: string): boolean {
  return (context.mounts.get(mountId) ?? 0) > 0;
}

/** The context's mounts and total after `mountId` gains (1) or loses (-1) one Mount. */
function withCount(context: VolumeContext, mountId: string, delta: 1 | -1) {
  const count = (context.mounts.get(mountId) ?? 0) + delta;
  return {
    mounts: count > 0 ? context.mounts.set(mountId, count) : context.mounts.delete(mountId),
    held: context.held + delta,
  };
}

export const volumeMachine = setup({
  types: {} as {
    context: VolumeContext;
    input: { name: string };
    events: VolumeEvent;
    emitted: VolumeIntent;
  },
  guards: {
    holdsMount: ({ context, event }) => {
      assertEvent(event, "volume.unmount");
      return holds(context, event.mountId);
    },
    isLastMount: ({ context, event }) => {
      assertEvent(event, "volume.unmount");
      return holds(context, event.mountId) && totalMounts(context) === 1;
    },
    hasNoMounts: ({ context }) => totalMounts(context) === 0,
    hasMounts: ({ context }) => totalMounts(context) > 0,
    wasMissing: ({ context }) => context.problem !== null,
  },
  actions: {
    recordCreate: assign(({ event }) => {
      assertEvent(event, "volume.create");
      return { opts: event.opts, createdAt: event.at, ...(event.node ? { node: event.node } : {}) };
    }),
    recordMountpoint: assign(({ context, event }) => {
      assertEvent(event, "effect.succeeded");
      return { mountpoint: event.mountpoint ?? context.mountpoint, problem: null };
    }),
    holdPending: assign(({ event }) => {
      assertEvent(event, ["volume.mount", "volume.unmount"]);
      return { pending: event.mountId };
    }),
    addMount: assign(({ context, event }) => {
      assertEvent(event, "volume.mount");
      return withCount(context, event.mountId, 1);
    }),
    dropMount: assign(({ context, event }) => {
      assertEvent(event, "volume.unmount");
      return withCount(context, event.mountId, -1);
    }),
    addPendingMount: assign(({ context }) => ({
      ...(context.pending === null ? {} : withCount(context, context.pending, 1)),
      pending: null,
    })),
    dropPendingMount: assign(({ context }) => ({
      ...(context.pending === null ? {} : withCount(context, context.pending, -1)),
      pending: null,
    })),
    clearPending: assign({ pending: null }),
    recordProblem: assign(({ event }) => {
      assertEvent(event, ["volume.vanished", "effect.failed"]);
      return { problem: event.reason };
    }),
    clearProblem: assign({ problem: null }),
    requestCreate: emit(({ context }) => ({
      type: "intent.create" as const,
      volume: context.name,
      opts: context.opts,
    })),
    requestMount: emit(({ context, event }) => {
      assertEvent(event, "volume.mount");
      return { type: "intent.mount" as const, volume: context.name, mountId: event.mountId };
    }),
    requestUnmount: emit(({ context, event }) => {
      assertEvent(event, "volume.unmount");
      return { type: "intent.unmount" as const, volume: context.name, mountId: event.mountId };
    }),
    requestRemove: emit(({ context }) => ({
      type: "intent.remove" as const,
      volume: context.name,
    })),
  },
}).createMachine({
  id: "volume",
  // xstate builds throwaway actors without input (its transition() does); answering them with an
  // empty name is far cheaper than throwing, which it would catch and ignore.
  context: ({ input }) => ({
    name: (input as { name: string } | undefined)?.name ?? "",
    opts: {},
    createdAt: 0,
    mountpoint: "",
    mounts: NO_MOUNTS,
    held: 0,
    pending: null,
    problem: null,
  }),
  initial: "absent",
  states: {
    absent: {
      on: { "volume.create": { target: "creating", actions: ["recordCreate", "requestCreate"] } },
    },
    creating: {
      on: {
        "effect.succeeded": { target: "unmounted", actions: "recordMountpoint" },
        "effect.failed": { target: "gone", actions: "recordProblem" },
      },
    },
    unmounted: {
      on: {
        "volume.mount": { target: "mounting", actions: ["holdPending", "requestMount"] },
        "volume.remove": { target: "removing", actions: "requestRemove" },
        "volume.vanished": { target: "missing", actions: "recordProblem" },
      },
    },
    mounting: {
      on: {
        "effect.succeeded": { target: "mounted", actions: ["addPendingMount", "recordMountpoint"] },
        "effect.failed": { target: "unmounted", actions: "clearPending" },
      },
    },
    mounted: {
      on: {
        "volume.mount": { actions: "addMount" },
        "volume.unmount": [
          {
            guard: "isLastMount",
            target: "unmounting",
            actions: ["holdPending", "requestUnmount"],
          },
          { guard: "holdsMount", actions: "dropMount" },
        ],
        "volume.vanished": { target: "missing", actions: "recordProblem" },
      },
    },
    unmounting: {
      on: {
        "effect.succeeded": { target: "unmounted", actions: "dropPendingMount" },
        "effect.failed": { target: "mounted", actions: "clearPending" },
      },
    },
    removing: {
      on: {
        "effect.succeeded": { target: "gone" },
        "effect.failed": [
          { guard: "wasMissing", target: "missing" },
          { target: "unmounted" },
        ],
      },
    },
    missing: {
      on: {
        "volume.unmount": { guard: "holdsMount", actions: "dropMount" },
        "volume.remove": { guard: "hasNoMounts", target: "removing", actions: "requestRemove" },
        "volume.reappeared": [
          { guard: "hasMounts", target: "mounted", actions: "clearProblem" },
          { target: "unmounted", actions: "clearProblem" },
        ],
      },
    },
    gone: { type: "final" },
  },
});

export type VolumeSnapshot = SnapshotFrom<typeof volumeMachine>;

/** States in which an effect is in flight: an actor left here by a crash needs reconciling. */
export const VOLUME_TRANSIENT_STATES = ["creating", "mounting", "unmounting", "removing"] as const;

/** Create of a volume that already exists changes nothing: dockerd may ask again (Create is idempotent). */
export function volumeIsNoop(snapshot: VolumeSnapshot, event: VolumeEvent): boolean {
  return event.type === "volume.create" &&
    (snapshot.matches("unmounted") || snapshot.matches("mounted"));
}

/**
 * The nodes whose Mounts hold the volume, in name order: on a shared log a mount is counted as
 * `node/ID` (the volume service's mountKey); a node's own mount IDs name none.
 */
function mountNodes(context: VolumeContext): string[] {
  const nodes = new Set<string>();
  for (const [key] of context.mounts) {
    const slash = key.indexOf("/");
    if (slash > 0) nodes.add(key.slice(0, slash));
  }
  return [...nodes].sort();
}

/** Explains, for a caller, why `snapshot.can(event)` said no. */
export function volumeRefusal(snapshot: VolumeSnapshot, event: VolumeEvent): string {
  const { name, problem } = snapshot.context;
  const state = String(snapshot.value);
  const verb = event.type.replace(/^volume\./, "");
  if (state === "missing" && (verb === "mount" || verb === "create")) {
    return `Cannot ${verb} volume "${name}": its directory vanished (${problem ?? "unknown"})`;
  }
  if (event.type === "volume.unmount") {
    return `Cannot unmount volume "${name}": mount ID "${event.mountId}" does not hold it`;
  }
  if (event.type === "volume.remove") {
    const total = totalMounts(snapshot.context);
    if (total > 0) {
      const nodes = mountNodes(snapshot.context);
      const where = nodes.length === 0
        ? ""
        : ` on node${nodes.length === 1 ? "" : "s"} ${nodes.map((n) => `"${n}"`).join(", ")}`;
      const mounts = `${total} mount${total === 1 ? "" : "s"}`;
      return `Cannot remove volume "${name}": in use by ${mounts}${where}`;
    }
  }
  return `Cannot ${verb} volume "${name}": it is ${state}`;
}

/**
 * The context as a snapshot file keeps it: plain JSON, the mounts as [id, count] pairs (a JSON
 * object would make mount IDs property names; rule 8).
 */
export function persistVolumeContext(context: VolumeContext): unknown {
  return { ...context, mounts: [...context.mounts] };
}

/** What a snapshot file may hold for a volume: checked whole before it is believed. */
const PersistedVolumeContext = z.strictObject({
  // A name is a directory name: no "/", never "." or "..".
  name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/),
  opts: StringMap,
  node: z.string().max(64).optional(),
  createdAt: at,
  mountpoint: z.string(),
  mounts: z.array(z.tuple([z.string().min(1), z.number().int().positive()])),
  held: z.number().optional(),
  pending: z.string().nullable(),
  problem: z.string().nullable(),
});

/** The context back from its persisted form (throws if it is not one); `held` is recounted. */
export function restoreVolumeContext(json: unknown): VolumeContext {
  const persisted = PersistedVolumeContext.parse(json);
  const mounts = PersistentMap(persisted.mounts);
  let held = 0;
  for (const [, count] of persisted.mounts) held += count;
  const { node, ...rest } = persisted;
  return { ...rest, ...(node === undefined ? {} : { node }), mounts, held };
}
