// Network and endpoint effects: bridges and veth pairs through NetPlumbing, and the reconcile
// rules that compare network and endpoint actors with the links the host really has.
import type { EndpointSnapshot } from "../../machines/endpoint_machine.ts";
import type { NetworkSnapshot } from "../../machines/network_machine.ts";
import type { NetPlumbing } from "../backends/net_plumbing.ts";
import type { Effects, EventFields } from "./effects.ts";

const INTERRUPTED = "interrupted by a restart";

/** The names of the host's links, looked up once per reconcile. */
export type LinkSurvey = () => Promise<Set<string>>;

/**
 * One `ip -json link` for networks and endpoints together: calls made while one is running share
 * it (the engine surveys every kind at once before reconciling).
 */
export function sharedLinkSurvey(plumbing: NetPlumbing): LinkSurvey {
  let running: Promise<Set<string>> | null = null;
  return () =>
    running ??= plumbing.linkNames().finally(() => {
      running = null;
    });
}

/** Effects of network actors: one Linux bridge each. */
export function createNetworkEffects(
  plumbing: NetPlumbing,
  survey: LinkSurvey = sharedLinkSurvey(plumbing),
): Effects<Set<string>, NetworkSnapshot> {
  return {
    check() {},
    async run(intent) {
      switch (intent.type) {
        case "intent.bridge.create":
          await plumbing.createBridge(intent.bridge, bridgeOptions(intent.mtu, intent.address));
          return {};
        case "intent.bridge.delete":
          await plumbing.deleteBridge(intent.bridge);
          return {};
        default:
          throw new Error(`Network effects cannot carry out ${intent.type}`);
      }
    },
    survey,
    async reconcile(_actorId, snapshot, links) {
      const { bridge } = snapshot.context;
      const present = links.has(bridge);
      switch (String(snapshot.value)) {
        // Never answered (effect.succeeded is logged before the reply): undo it. dockerd either
        // resends CreateNetwork, which starts over, or gave up and will never delete it.
        case "creating":
          if (present) await plumbing.deleteBridge(bridge);
          return [failed(`${INTERRUPTED} before the bridge was answered`)];
        case "repairing":
          return present ? [{ type: "effect.succeeded" }] : [failed(`bridge ${bridge} missing`)];
        // Asked for and logged: finish it; a resent DeleteNetwork then finds nothing to do.
        case "deleting":
          if (present) await plumbing.deleteBridge(bridge);
          return [{ type: "effect.succeeded" }];
        case "ready":
        case "broken":
          return present
            ? []
            : [{ type: "network.bridge.lost", reason: `bridge ${bridge} is gone` }];
        default:
          return [];
      }
    },
  };
}

/** Effects of endpoint actors: one veth pair each, host end on the network's bridge. */
export function createEndpointEffects(
  plumbing: NetPlumbing,
  survey: LinkSurvey = sharedLinkSurvey(plumbing),
): Effects<Set<string>, EndpointSnapshot> {
  return {
    check() {},
    async run(intent) {
      switch (intent.type) {
        case "intent.veth.create":
          await plumbing.createVeth(
            intent.host,
            intent.peer,
            vethOptions(intent.bridge, intent.mtu),
          );
          return {};
        case "intent.veth.delete":
          await plumbing.deleteVeth(intent.host);
          return {};
        default:
          throw new Error(`Endpoint effects cannot carry out ${intent.type}`);
      }
    },
    survey,
    async reconcile(_actorId, snapshot, links) {
      const present = links.has(snapshot.context.host);
      // An interrupted DeleteEndpoint is finished: dockerd forgets the endpoint either way.
      if (present && String(snapshot.value) === "deleting") {
        await plumbing.deleteVeth(snapshot.context.host);
      }
      return endpointDrift(snapshot, present);
    },
  };
}

function endpointDrift(snapshot: EndpointSnapshot, present: boolean): EventFields[] {
  const { host } = snapshot.context;
  switch (String(snapshot.value)) {
    // The caller was never answered and retries or rolls back; either way a pair that exists
    // must be known, so that DeleteEndpoint removes it rather than leak it.
    case "joining":
      return present ? [{ type: "effect.succeeded" }] : [failed(`${INTERRUPTED} before the veth`)];
    case "deleting":
      return [{ type: "effect.succeeded" }];
    case "joined":
      return present ? [] : [{ type: "endpoint.veth.lost", reason: `veth ${host} is gone` }];
    default:
      return [];
  }
}

function failed(reason: string): EventFields {
  return { type: "effect.failed", reason };
}

function bridgeOptions(mtu: number | null, address: string | null) {
  return { ...(mtu === null ? {} : { mtu }), ...(address === null ? {} : { address }) };
}

function vethOptions(bridge: string, mtu: number | null) {
  return { bridge, ...(mtu === null ? {} : { mtu }) };
}
