// The address pool machine: one IPAM pool and which of its addresses are handed out.
// Pure: xstate and zod only. The engine picks addresses (lowest free) and puts them in events;
// the machine refuses an address that is already out, so none is ever handed out twice.
import { assertEvent, assign, setup, type SnapshotFrom } from "xstate";
import { z } from "zod";

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

function holder(context: PoolContext, address: string): AddressRole | undefined {
  const n = ipNumber(address);
  return context.addresses.find(([held]) => held === n)?.[1];
}
export const AddressRole = z.enum(["gateway", "endpoint", "aux"]);
export type AddressRole = z.infer<typeof AddressRole>;

export const PoolEvent = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("pool.request"),
    cidr: z.string().min(1),
    space: z.string(),
    options: z.record(z.string(), z.string()),
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
   * What is handed out: [address as a 32-bit number, what holds it]. A list of numbers, not a
   * record keyed by address: each event copies it, and a big record (a network with hundreds of
   * containers) is slow to copy and to delete from, while a list of numbers stays cheap.
   */
  addresses: [number, AddressRole][];
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
      return { cidr: event.cidr, space: event.space, options: event.options, createdAt: event.at };
    }),
    reserve: assign(({ context, event }) => {
      assertEvent(event, "pool.address.reserve");
      return { addresses: [...context.addresses, [ipNumber(event.address), event.role]] };
    }),
    release: assign(({ context, event }) => {
      assertEvent(event, "pool.address.release");
      const n = ipNumber(event.address);
      return { addresses: context.addresses.filter(([held]) => held !== n) };
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
    addresses: [],
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
