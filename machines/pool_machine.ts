// The address pool machine: one IPAM pool and which of its addresses are handed out.
// Pure: xstate, zod and immutable only. The engine picks addresses (lowest free) and puts them in events;
// the machine refuses an address that is already out, so none is ever handed out twice.
import { Map as PersistentMap } from "immutable";
import { assertEvent, assign, setup, type SnapshotFrom } from "xstate";
import { z } from "zod";
import { StringMap } from "./wire_map.ts";
import {
  type AddressSet,
  emptyAddressSet,
  lowestFreeAddress,
  withAddress,
} from "./_address_set.ts";

/**
 * Bumped whenever the shape of a pool event changes, with an upcaster in mod.ts that turns the
 * records of the version before into this one (replay upcasts old records as it reads them).
 */
export const POOL_MACHINE_VERSION = 1;

const at = z.number().int().nonnegative();
const IPV4_REGEXP = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const ipv4 = z.string().regex(IPV4_REGEXP, "must be a dotted IPv4 address");

/** An IPv4 address as a number; events carry addresses the engine already checked. */
export function ipNumber(address: string): number {
  const [, a, b, c, d] = IPV4_REGEXP.exec(address) ?? [];
  return ((Number(a) << 24) | (Number(b) << 16) | (Number(c) << 8) | Number(d)) >>> 0;
}

/** The address as the pool keys it: "198.018.7.1" and "198.18.7.1" are one address. */
function key(address: string): string {
  const n = ipNumber(address);
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function holder(context: PoolContext, address: string): AddressRole | undefined {
  return context.addresses.get(key(address));
}

/** The addresses a pool `cidr` covers, as an empty set. */
function addressSetOf(cidr: string): AddressSet {
  const [network, prefix] = cidr.split("/");
  return emptyAddressSet(ipNumber(network ?? ""), 2 ** (32 - Number(prefix)));
}

const NO_ADDRESSES = PersistentMap<string, AddressRole>();
const NO_SET = emptyAddressSet(0, 0);
export const AddressRole = z.enum(["gateway", "endpoint", "aux"]);
export type AddressRole = z.infer<typeof AddressRole>;

export const PoolEvent = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("pool.request"),
    cidr: z.string().min(1),
    space: z.string(),
    options: StringMap,
    at,
  }),
  z.object({ type: z.literal("pool.address.reserve"), address: ipv4, role: AddressRole, at }),
  z.object({ type: z.literal("pool.address.release"), address: ipv4, at }),
  z.object({ type: z.literal("pool.release"), at }),
]);
export type PoolEvent = z.infer<typeof PoolEvent>;

export type PoolContext = {
  /** The pool id, which is its CIDR, e.g. `198.18.7.0/24`. */
  name: string;
  cidr: string;
  space: string;
  options: Record<string, string>;
  /**
   * What is handed out: dotted address → what holds it. Persistent maps and sets, so that a
   * reserve or release in a /16 holding 60,000 addresses costs what it does in an empty pool:
   * each event shares all but a few nodes with the context before it.
   */
  addresses: PersistentMap<string, AddressRole>;
  /** The same addresses as a bitmap, for the lowest free one (JSON shows only the count). */
  taken: AddressSet;
  /** The pool's gateway, when one is handed out (a pool has one). */
  gateway: string | null;
  createdAt: number;
};

export const poolMachine = setup({
  types: {} as { context: PoolContext; input: { name: string }; events: PoolEvent },
  guards: {
    isFree: ({ context, event }) => {
      assertEvent(event, "pool.address.reserve");
      return holder(context, event.address) === undefined;
    },
    isHeld: ({ context, event }) => {
      assertEvent(event, "pool.address.release");
      return holder(context, event.address) !== undefined;
    },
  },
  actions: {
    recordRequest: assign(({ event }) => {
      assertEvent(event, "pool.request");
      return {
        cidr: event.cidr,
        space: event.space,
        options: event.options,
        createdAt: event.at,
        taken: addressSetOf(event.cidr),
      };
    }),
    reserve: assign(({ context, event }) => {
      assertEvent(event, "pool.address.reserve");
      return {
        addresses: context.addresses.set(key(event.address), event.role),
        taken: withAddress(context.taken, ipNumber(event.address), true),
        gateway: event.role === "gateway" ? key(event.address) : context.gateway,
      };
    }),
    release: assign(({ context, event }) => {
      assertEvent(event, "pool.address.release");
      return {
        addresses: context.addresses.delete(key(event.address)),
        taken: withAddress(context.taken, ipNumber(event.address), false),
        gateway: context.gateway === key(event.address) ? null : context.gateway,
      };
    }),
  },
}).createMachine({
  id: "pool",
  // xstate builds throwaway actors without input; an empty name is cheaper than a throw.
  context: ({ input }) => ({
    name: (input as { name: string } | undefined)?.name ?? "",
    cidr: "",
    space: "",
    options: {},
    addresses: NO_ADDRESSES,
    taken: NO_SET,
    gateway: null,
    createdAt: 0,
  }),
  initial: "absent",
  states: {
    absent: { on: { "pool.request": { target: "active", actions: "recordRequest" } } },
    active: {
      on: {
        "pool.address.reserve": { guard: "isFree", actions: "reserve" },
        "pool.address.release": { guard: "isHeld", actions: "release" },
        // dockerd releases the gateway first; whatever is still held goes with the pool.
        "pool.release": { target: "gone" },
      },
    },
    gone: { type: "final" },
  },
});

export type PoolSnapshot = SnapshotFrom<typeof poolMachine>;

/** The lowest address in [from, to] the pool has not handed out, or null when all are out. */
export function lowestFree(context: PoolContext, from: number, to: number): number | null {
  return lowestFreeAddress(context.taken, from, to);
}

/** Pools have no effect on the host, so no state is ever in flight. */
export const POOL_TRANSIENT_STATES = [] as const;

/** Asking for the pool again is refused (a second network on it would share addresses). */
export function poolIsNoop(): boolean {
  return false;
}

/** Explains, for a caller, why `snapshot.can(event)` said no. */
export function poolRefusal(snapshot: PoolSnapshot, event: PoolEvent): string {
  const { name } = snapshot.context;
  switch (event.type) {
    case "pool.address.reserve": {
      const role = holder(snapshot.context, event.address);
      return `Cannot reserve address "${event.address}" in pool "${name}": already in use` +
        (role ? ` (${role})` : "");
    }
    case "pool.address.release":
      return `Cannot release address "${event.address}" in pool "${name}": it is not in use`;
    case "pool.request":
      return `Cannot request pool "${name}": it is already in use`;
    default:
      return `Cannot release pool "${name}": it is ${String(snapshot.value)}`;
  }
}

/**
 * The context as a snapshot file keeps it: plain JSON, the addresses as [address, role] pairs;
 * the bitmap is not kept, it is rebuilt from them.
 */
export function persistPoolContext(context: PoolContext): unknown {
  const { taken: _taken, ...rest } = context;
  return { ...rest, addresses: [...context.addresses] };
}

/** What a snapshot file may hold for a pool: checked whole before it is believed. */
const PersistedPoolContext = z.strictObject({
  name: z.string().min(1),
  cidr: z.string(),
  space: z.string(),
  options: StringMap,
  addresses: z.array(z.tuple([ipv4, AddressRole])),
  gateway: z.string().nullable(),
  createdAt: at,
});

/** The context back from its persisted form (throws if it is not one); the bitmap is rebuilt. */
export function restorePoolContext(json: unknown): PoolContext {
  const persisted = PersistedPoolContext.parse(json);
  let taken = persisted.cidr === "" ? NO_SET : addressSetOf(persisted.cidr);
  for (const [address] of persisted.addresses) taken = withAddress(taken, ipNumber(address), true);
  return { ...persisted, addresses: PersistentMap(persisted.addresses), taken };
}
