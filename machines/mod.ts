// The registry of machine kinds: what the engine needs to know to host, replay and explain each.
// Pure like the machines themselves.
import type { AnyMachineSnapshot, AnyStateMachine } from "xstate";
import type { z } from "zod";
import {
  ENDPOINT_MACHINE_VERSION,
  ENDPOINT_TRANSIENT_STATES,
  EndpointEvent,
  endpointIsNoop,
  endpointMachine,
  endpointRefusal,
  type EndpointSnapshot,
  restoreEndpointContext,
} from "./endpoint_machine.ts";
import {
  NETWORK_MACHINE_VERSION,
  NETWORK_TRANSIENT_STATES,
  NetworkEvent,
  networkIsNoop,
  networkMachine,
  networkRefusal,
  type NetworkSnapshot,
  restoreNetworkContext,
} from "./network_machine.ts";
import {
  persistPoolContext,
  POOL_MACHINE_VERSION,
  POOL_TRANSIENT_STATES,
  type PoolContext,
  PoolEvent,
  poolIsNoop,
  poolMachine,
  poolRefusal,
  type PoolSnapshot,
  restorePoolContext,
} from "./pool_machine.ts";
import {
  persistVolumeContext,
  restoreVolumeContext,
  VOLUME_MACHINE_VERSION,
  VOLUME_TRANSIENT_STATES,
  type VolumeContext,
  VolumeEvent,
  volumeIsNoop,
  volumeMachine,
  volumeRefusal,
  type VolumeSnapshot,
} from "./volume_machine.ts";

/**
 * Turns the event of a record written by machine version n into its version n + 1 form. Records
 * are never rewritten: replay upcasts them as it reads them.
 */
export type Upcaster = (event: { type: string; data: Record<string, unknown> }) => {
  type: string;
  data: Record<string, unknown>;
};

/** One kind of entity: its machine, the schema of its events, and how to talk about refusals. */
export type MachineKind = {
  machine: AnyStateMachine;
  version: number;
  /** `upcasters[n - 1]` upcasts version n to n + 1; one per version below `version`. */
  upcasters: readonly Upcaster[];
  event: z.ZodType<{ type: string; at: number }>;
  transient: readonly string[];
  refusal: (snapshot: AnyMachineSnapshot, event: { type: string; at: number }) => string;
  /** True when the event is allowed but changes nothing, so nothing is logged. */
  isNoop: (snapshot: AnyMachineSnapshot, event: { type: string; at: number }) => boolean;
  /**
   * The context as plain JSON for a snapshot file, and back (persistent maps become pairs). The
   * way back checks the whole context against a schema and throws if it does not match: a
   * checksum guards against damage, not against a file someone wrote.
   */
  persist: (context: unknown) => unknown;
  restore: (json: unknown) => unknown;
};

/** For contexts that are plain JSON already: kept as they are, checked on the way back. */
const asIs = (context: unknown) => context;

export const KINDS = {
  volume: {
    machine: volumeMachine,
    version: VOLUME_MACHINE_VERSION,
    upcasters: [],
    event: VolumeEvent,
    transient: VOLUME_TRANSIENT_STATES,
    refusal: (snapshot, event) => volumeRefusal(snapshot as VolumeSnapshot, event as VolumeEvent),
    isNoop: (snapshot, event) => volumeIsNoop(snapshot as VolumeSnapshot, event as VolumeEvent),
    persist: (context) => persistVolumeContext(context as VolumeContext),
    restore: restoreVolumeContext,
  },
  pool: {
    machine: poolMachine,
    version: POOL_MACHINE_VERSION,
    upcasters: [],
    event: PoolEvent,
    transient: POOL_TRANSIENT_STATES,
    refusal: (snapshot, event) => poolRefusal(snapshot as PoolSnapshot, event as PoolEvent),
    isNoop: () => poolIsNoop(),
    persist: (context) => persistPoolContext(context as PoolContext),
    restore: restorePoolContext,
  },
  network: {
    machine: networkMachine,
    version: NETWORK_MACHINE_VERSION,
    upcasters: [],
    event: NetworkEvent,
    transient: NETWORK_TRANSIENT_STATES,
    refusal: (snapshot, event) =>
      networkRefusal(snapshot as NetworkSnapshot, event as NetworkEvent),
    isNoop: (snapshot, event) => networkIsNoop(snapshot as NetworkSnapshot, event as NetworkEvent),
    persist: asIs,
    restore: restoreNetworkContext,
  },
  endpoint: {
    machine: endpointMachine,
    version: ENDPOINT_MACHINE_VERSION,
    upcasters: [],
    event: EndpointEvent,
    transient: ENDPOINT_TRANSIENT_STATES,
    refusal: (snapshot, event) =>
      endpointRefusal(snapshot as EndpointSnapshot, event as EndpointEvent),
    isNoop: (snapshot, event) =>
      endpointIsNoop(snapshot as EndpointSnapshot, event as EndpointEvent),
    persist: asIs,
    restore: restoreEndpointContext,
  },
} satisfies Record<string, MachineKind>;

export type KindName = keyof typeof KINDS;

/** Each kind's snapshot type: what the engine hands back for an actor of that kind. */
export type SnapshotOfKind = {
  volume: VolumeSnapshot;
  pool: PoolSnapshot;
  network: NetworkSnapshot;
  endpoint: EndpointSnapshot;
};

/** An actor's id: its kind, a slash, its name (`volume/db-data`); the kind types its snapshot. */
export type ActorId<K extends KindName = KindName> = `${K}/${string}`;

export function isKindName(value: string): value is KindName {
  return Object.hasOwn(KINDS, value);
}
