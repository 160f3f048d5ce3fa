// The endpoint machine: one libnetwork endpoint and its veth pair, from CreateEndpoint through
// Join and Leave to DeleteEndpoint, with repair when reconcile finds the pair gone.
// Pure: xstate and zod only. The pair is made at Join and deleted only at DeleteEndpoint, because
// libnetwork moves the container end back to the host after Leave.
import { assertEvent, assign, emit, setup, type SnapshotFrom } from "xstate";
import { z } from "zod";
import type { EndpointIntent } from "./intents.ts";

/**
 * Bumped whenever the shape of an endpoint event changes, with an upcaster in mod.ts that turns the
 * records of the version before into this one (replay upcasts old records as it reads them).
 */
export const ENDPOINT_MACHINE_VERSION = 1;

const at = z.number().int().nonnegative();

export const EndpointEvent = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("endpoint.create"),
    networkId: z.string().min(1),
    /** CIDR from IPAM, e.g. "198.18.7.2/24". */
    address: z.string(),
    mac: z.string(),
    /** Host end of the veth pair, attached to `bridge`. */
    host: z.string().min(1),
    /** Container end, returned to dockerd as `SrcName`. */
    peer: z.string().min(1),
    bridge: z.string().min(1),
    mtu: z.number().int().positive().nullable(),
    /** On a log several Berths share: the node that made it, and that node's underlay address. */
    node: z.string().max(64).optional(),
    underlay: z.string().max(64).optional(),
    at,
  }),
  z.object({ type: z.literal("endpoint.join"), sandboxKey: z.string(), at }),
  z.object({ type: z.literal("endpoint.leave"), at }),
  z.object({ type: z.literal("endpoint.delete"), at }),
  z.object({ type: z.literal("endpoint.veth.lost"), reason: z.string(), at }),
  z.object({ type: z.literal("effect.succeeded"), at }),
  z.object({ type: z.literal("effect.failed"), reason: z.string(), at }),
]);
export type EndpointEvent = z.infer<typeof EndpointEvent>;

export type EndpointContext = {
  /** The EndpointID (64 hex) dockerd chose. */
  id: string;
  networkId: string;
  address: string;
  mac: string;
  host: string;
  peer: string;
  bridge: string;
  mtu: number | null;
  /** The sandbox of the current Join; null when not joined. */
  sandboxKey: string | null;
  /** True once a veth pair was made: DeleteEndpoint must then delete it. */
  plumbed: boolean;
  /** Why the pair was lost, or why the last effect failed. */
  problem: string | null;
  /** Milliseconds since the epoch, from the `endpoint.create` event. */
  createdAt: number;
  /** On a log several Berths share: the node whose host holds the pair; absent on one host. */
  node?: string;
  /** That node's underlay address (--advertise-address), where VXLAN frames for it go. */
  underlay?: string;
};

/** What a snapshot file may hold for an endpoint: checked whole before it is believed. */
const PersistedEndpointContext = z.strictObject({
  id: z.string().min(1),
  networkId: z.string().min(1),
  address: z.string(),
  mac: z.string(),
  host: z.string(),
  peer: z.string(),
  bridge: z.string(),
  mtu: z.number().int().positive().nullable(),
  sandboxKey: z.string().nullable(),
  plumbed: z.boolean(),
  problem: z.string().nullable(),
  createdAt: at,
  node: z.string().max(64).optional(),
  underlay: z.string().max(64).optional(),
});

/** The context back from a snapshot file (throws if it is not one). */
export function restoreEndpointContext(json: unknown): EndpointContext {
  const { node, underlay, ...rest } = PersistedEndpointContext.parse(json);
  return {
    ...rest,
    ...(node === undefined ? {} : { node }),
    ...(underlay === undefined ? {} : { underlay }),
  };
}

export const endpointMachine = setup({
  types: {} as {
    context: EndpointContext;
    input: { name: string };
    events: EndpointEvent;
    emitted: EndpointIntent;
  },
  guards: {
    isPlumbed: ({ context }) => context.plumbed,
  },
  actions: {
    recordCreate: assign(({ event }) => {
      assertEvent(event, "endpoint.create");
      const { networkId, address, mac, host, peer, bridge, mtu, node, underlay } = event;
      return {
        networkId,
        address,
        mac,
        host,
        peer,
        bridge,
        mtu,
        createdAt: event.at,
        ...(node === undefined ? {} : { node }),
        ...(underlay === undefined ? {} : { underlay }),
      };
    }),
    recordJoin: assign(({ event }) => {
      assertEvent(event, "endpoint.join");
      return { sandboxKey: event.sandboxKey };
    }),
    forgetSandbox: assign({ sandboxKey: null }),
    markPlumbed: assign({ plumbed: true, problem: null }),
    recordProblem: assign(({ event }) => {
      assertEvent(event, ["endpoint.veth.lost", "effect.failed"]);
      return { problem: event.reason };
    }),
    requestVeth: emit(({ context }) => ({
      type: "intent.veth.create" as const,
      endpoint: context.id,
      host: context.host,
      peer: context.peer,
      bridge: context.bridge,
      mtu: context.mtu,
      network: context.networkId,
      mac: context.mac,
    })),
    requestDelete: emit(({ context }) => ({
      type: "intent.veth.delete" as const,
      endpoint: context.id,
      host: context.host,
    })),
  },
}).createMachine({
  id: "endpoint",
  // xstate builds throwaway actors without input (its transition() does); answering them with an
  // empty id is far cheaper than throwing, which it would catch and ignore.
  context: ({ input }) => ({
    id: (input as { name: string } | undefined)?.name ?? "",
    networkId: "",
    address: "",
    mac: "",
    host: "",
    peer: "",
    bridge: "",
    mtu: null,
    sandboxKey: null,
    plumbed: false,
    problem: null,
    createdAt: 0,
  }),
  initial: "absent",
  states: {
    absent: {
      on: { "endpoint.create": { target: "created", actions: "recordCreate" } },
    },
    created: {
      on: {
        "endpoint.join": { target: "joining", actions: ["recordJoin", "requestVeth"] },
        "endpoint.delete": [
          { guard: "isPlumbed", target: "deleting", actions: "requestDelete" },
          { target: "gone" },
        ],
      },
    },
    joining: {
      on: {
        "effect.succeeded": { target: "joined", actions: "markPlumbed" },
        // A pair made by an earlier Join may still exist: `plumbed` keeps what it knew.
        "effect.failed": { target: "created", actions: ["recordProblem", "forgetSandbox"] },
      },
    },
    joined: {
      on: {
        // dockerd joins again after a legacy-link refresh; creating the pair is idempotent.
        "endpoint.join": { target: "joining", actions: ["recordJoin", "requestVeth"] },
        "endpoint.leave": { target: "created", actions: "forgetSandbox" },
        "endpoint.delete": [
          { guard: "isPlumbed", target: "deleting", actions: "requestDelete" },
          { target: "gone" },
        ],
        "endpoint.veth.lost": { target: "joining", actions: ["recordProblem", "requestVeth"] },
      },
    },
    deleting: {
      on: {
        "effect.succeeded": { target: "gone" },
        // libnetwork ignores DeleteEndpoint errors; a later delete may try again.
        "effect.failed": { target: "created", actions: ["recordProblem", "forgetSandbox"] },
      },
    },
    gone: { type: "final" },
  },
});

export type EndpointSnapshot = SnapshotFrom<typeof endpointMachine>;

/** States in which an effect is in flight: an actor left here by a crash needs reconciling. */
export const ENDPOINT_TRANSIENT_STATES = ["joining", "deleting"] as const;

/**
 * Create again with the same network and address, or Leave when not joined, changes nothing:
 * dockerd may repeat CreateEndpoint, and logs and ignores a failed Leave.
 */
export function endpointIsNoop(snapshot: EndpointSnapshot, event: EndpointEvent): boolean {
  const { networkId, address } = snapshot.context;
  switch (event.type) {
    case "endpoint.create":
      return isSettled(snapshot) && event.networkId === networkId && event.address === address;
    case "endpoint.leave":
      return snapshot.matches("created");
    default:
      return false;
  }
}

/** Explains, for a caller, why `snapshot.can(event)` said no. */
export function endpointRefusal(snapshot: EndpointSnapshot, event: EndpointEvent): string {
  const { id, networkId, address } = snapshot.context;
  const endpoint = `endpoint "${id.slice(0, 12)}"`;
  const state = String(snapshot.value);
  switch (event.type) {
    case "effect.succeeded":
    case "effect.failed":
      return `Cannot record "${event.type}" for ${endpoint}: no effect is in flight (it is ${state})`;
    case "endpoint.create":
      if (isSettled(snapshot)) {
        return `Cannot create ${endpoint}: it exists on network "${networkId.slice(0, 12)}" ` +
          `with address "${address}"`;
      }
      return `Cannot create ${endpoint}: it is ${state}`;
    case "endpoint.veth.lost":
      return `Cannot repair ${endpoint}: it is ${state}`;
    default:
      return `Cannot ${event.type.slice("endpoint.".length)} ${endpoint}: it is ${state}`;
  }
}

function isSettled(snapshot: EndpointSnapshot): boolean {
  return snapshot.matches("created") || snapshot.matches("joined");
}
