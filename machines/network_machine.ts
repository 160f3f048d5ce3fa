// The network machine: one libnetwork network and its Linux bridge, from CreateNetwork to
// DeleteNetwork, with repair when reconcile finds the bridge gone. Pure: xstate and zod only.
import { assertEvent, assign, emit, setup, type SnapshotFrom } from "xstate";
import { z } from "zod";
import { StringMap } from "./wire_map.ts";
import type { NetworkIntent } from "./intents.ts";

/**
 * Bumped whenever the shape of a network event changes, with an upcaster in mod.ts that turns the
 * records of the version before into this one (replay upcasts old records as it reads them).
 */
export const NETWORK_MACHINE_VERSION = 1;

const at = z.number().int().nonnegative();

export const NetworkEvent = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("network.create"),
    bridge: z.string().min(1),
    mtu: z.number().int().positive().nullable(),
    /** CIDR of the gateway, e.g. "198.18.7.1/24"; null when IPAM allocated none. */
    gateway: z.string().min(1).nullable(),
    /** CIDR of the IPv4 pool, e.g. "198.18.7.0/24". */
    pool: z.string().min(1).nullable(),
    options: StringMap,
    /** On a log several Berths share: the node that made it (its bridge carries the gateway). */
    node: z.string().max(64).optional(),
    at,
  }),
  // The engine counts the network's live endpoints when the command's turn comes.
  z.object({ type: z.literal("network.delete"), endpoints: z.number().int().nonnegative(), at }),
  z.object({ type: z.literal("network.bridge.lost"), reason: z.string(), at }),
  z.object({ type: z.literal("effect.succeeded"), at }),
  z.object({ type: z.literal("effect.failed"), reason: z.string(), at }),
]);
export type NetworkEvent = z.infer<typeof NetworkEvent>;

export type NetworkContext = {
  /** The NetworkID (64 hex) dockerd chose. */
  id: string;
  bridge: string;
  mtu: number | null;
  gateway: string | null;
  pool: string | null;
  options: Record<string, string>;
  /** Milliseconds since the epoch, from the `network.create` event. */
  createdAt: number;
  /** Why the bridge is being repaired or is `broken`, or why its creation failed. */
  problem: string | null;
  /** On a log several Berths share: the node that made it; absent on one host. */
  node?: string;
};

/** What a snapshot file may hold for a network: checked whole before it is believed. */
const PersistedNetworkContext = z.strictObject({
  id: z.string().min(1),
  bridge: z.string(),
  mtu: z.number().int().positive().nullable(),
  gateway: z.string().nullable(),
  pool: z.string().nullable(),
  options: StringMap,
  createdAt: at,
  problem: z.string().nullable(),
  node: z.string().max(64).optional(),
});

/** The context back from a snapshot file (throws if it is not one). */
export function restoreNetworkContext(json: unknown): NetworkContext {
  const { node, ...rest } = PersistedNetworkContext.parse(json);
  return { ...rest, ...(node === undefined ? {} : { node }) };
}

/** What a network in service (ready, or broken by a failed repair) accepts. */
const IN_SERVICE = {
  "network.delete": { guard: "hasNoEndpoints", target: "deleting", actions: "requestDelete" },
  "network.bridge.lost": { target: "repairing", actions: ["recordProblem", "requestBridge"] },
} as const;

export const networkMachine = setup({
  types: {} as {
    context: NetworkContext;
    input: { name: string };
    events: NetworkEvent;
    emitted: NetworkIntent;
  },
  guards: {
    hasNoEndpoints: ({ event }) => {
      assertEvent(event, "network.delete");
      return event.endpoints === 0;
    },
    // `problem` is null in `ready` and set in `broken`: it tells where a deletion came from.
    wasBroken: ({ context }) => context.problem !== null,
  },
  actions: {
    recordCreate: assign(({ event }) => {
      assertEvent(event, "network.create");
      return {
        bridge: event.bridge,
        mtu: event.mtu,
        gateway: event.gateway,
        pool: event.pool,
        options: event.options,
        createdAt: event.at,
        ...(event.node === undefined ? {} : { node: event.node }),
      };
    }),
    recordProblem: assign(({ event }) => {
      assertEvent(event, ["network.bridge.lost", "effect.failed"]);
      return { problem: event.reason };
    }),
    clearProblem: assign({ problem: null }),
    requestBridge: emit(({ context }) => ({
      type: "intent.bridge.create" as const,
      network: context.id,
      bridge: context.bridge,
      mtu: context.mtu,
      address: context.gateway,
    })),
    requestDelete: emit(({ context }) => ({
      type: "intent.bridge.delete" as const,
      network: context.id,
      bridge: context.bridge,
    })),
  },
}).createMachine({
  id: "network",
  // xstate builds throwaway actors without input (its transition() does); answering them with an
  // empty id is far cheaper than throwing, which it would catch and ignore.
  context: ({ input }) => ({
    id: (input as { name: string } | undefined)?.name ?? "",
    bridge: "",
    mtu: null,
    gateway: null,
    pool: null,
    options: {},
    createdAt: 0,
    problem: null,
  }),
  initial: "absent",
  states: {
    absent: {
      on: {
        "network.create": { target: "creating", actions: ["recordCreate", "requestBridge"] },
      },
    },
    creating: {
      on: {
        "effect.succeeded": { target: "ready" },
        "effect.failed": { target: "gone", actions: "recordProblem" },
      },
    },
    // A broken network (its repair failed) can be deleted or repaired again, as a ready one.
    ready: { on: IN_SERVICE },
    repairing: {
      on: {
        "effect.succeeded": { target: "ready", actions: "clearProblem" },
        "effect.failed": { target: "broken", actions: "recordProblem" },
      },
    },
    broken: { on: IN_SERVICE },
    deleting: {
      on: {
        "effect.succeeded": { target: "gone" },
        // The failure itself goes back to the caller; a broken bridge stays broken.
        "effect.failed": [{ guard: "wasBroken", target: "broken" }, { target: "ready" }],
      },
    },
    gone: { type: "final" },
  },
});

export type NetworkSnapshot = SnapshotFrom<typeof networkMachine>;

/** States in which an effect is in flight: an actor left here by a crash needs reconciling. */
export const NETWORK_TRANSIENT_STATES = ["creating", "repairing", "deleting"] as const;

/** Create of a network that is already ready changes nothing (CreateNetwork is idempotent). */
export function networkIsNoop(snapshot: NetworkSnapshot, event: NetworkEvent): boolean {
  return event.type === "network.create" && snapshot.matches("ready");
}

/** Explains, for a caller, why `snapshot.can(event)` said no. */
export function networkRefusal(snapshot: NetworkSnapshot, event: NetworkEvent): string {
  const { id, problem } = snapshot.context;
  const network = `network "${id.slice(0, 12)}"`;
  const state = String(snapshot.value);
  if (event.type === "effect.succeeded" || event.type === "effect.failed") {
    return `Cannot record "${event.type}" for ${network}: no effect is in flight (it is ${state})`;
  }
  if (event.type === "network.delete" && event.endpoints > 0 && isSettled(state)) {
    const count = `${event.endpoints} endpoint${event.endpoints === 1 ? "" : "s"}`;
    return `Cannot delete ${network}: ${count} still attached`;
  }
  const verb = event.type === "network.bridge.lost"
    ? "repair"
    : event.type.slice("network.".length);
  if (state === "broken") {
    return `Cannot ${verb} ${network}: its bridge is broken (${problem ?? "unknown"})`;
  }
  return `Cannot ${verb} ${network}: it is ${state}`;
}

function isSettled(state: string): boolean {
  return state === "ready" || state === "broken";
}
