// Network and endpoint effects: bridges and veth pairs through NetPlumbing, and the reconcile
// rules that compare network and endpoint actors with the links the host really has.
import type { EndpointSnapshot } from "../../machines/endpoint_machine.ts";
import type { NetworkSnapshot } from "../../machines/network_machine.ts";
import type { LinkState, NetPlumbing } from "../backends/net_plumbing.ts";
import { gatewayMac } from "../backends/vxlan_plumbing.ts";
import type { Effects, EventFields } from "./effects.ts";
import type { Fabric } from "./vxlan_fabric.ts";

const INTERRUPTED = "interrupted by a restart";

/** The host's links by name, looked up once per reconcile. */
export type LinkSurvey = () => Promise<Map<string, LinkState>>;

/**
 * One `ip -json link` for networks and endpoints together: calls made while one is running share
 * it (the engine surveys every kind at once before reconciling).
 */
export function sharedLinkSurvey(plumbing: NetPlumbing): LinkSurvey {
  let running: Promise<Map<string, LinkState>> | null = null;
  return () =>
    running ??= plumbing.linkStates().finally(() => {
      running = null;
    });
}

/** Another node's network or endpoint (on a shared log): its effects are that node's. */
function othersOn(fabric: Fabric | undefined, context: { node?: string }): boolean {
  return fabric !== undefined && context.node !== undefined && context.node !== fabric.node;
}

/**
 * Effects of network actors: one Linux bridge each; on a cluster (`fabric`), with its VXLAN
 * device to the other nodes.
 */
export function createNetworkEffects(
  plumbing: NetPlumbing,
  survey: LinkSurvey = sharedLinkSurvey(plumbing),
  fabric?: Fabric,
): Effects<Map<string, LinkState>, NetworkSnapshot> {
  return {
    check() {},
    async run(intent) {
      switch (intent.type) {
        case "intent.bridge.create":
          // On a cluster every node's copy of the bridge has the same MAC: each is the gateway.
          await plumbing.createBridge(intent.bridge, {
            ...bridgeOptions(intent.mtu, intent.address),
            ...(fabric === undefined ? {} : { mac: gatewayMac(intent.network) }),
          });
          if (fabric !== undefined) {
            try {
              await fabric.attach(intent.network, intent.bridge, intent.mtu, { bridgeToo: false });
            } catch (error) {
              // The create failed as a whole: no bridge is left behind for a network not made.
              await fabric.detach(intent.network).catch(() => {});
              await plumbing.deleteBridge(intent.bridge).catch(() => {});
              throw error;
            }
          }
          return {};
        case "intent.bridge.delete":
          await fabric?.detach(intent.network);
          await plumbing.deleteBridge(intent.bridge);
          return {};
        default:
          throw new Error(`Network effects cannot carry out ${intent.type}`);
      }
    },
    survey,
    async reconcile(_actorId, snapshot, links) {
      if (othersOn(fabric, snapshot.context)) return [];
      const { bridge } = snapshot.context;
      const present = links.has(bridge);
      switch (String(snapshot.value)) {
        // Never answered (effect.succeeded is logged before the reply): undo it. dockerd either
        // resends CreateNetwork, which starts over, or gave up and will never delete it.
        // An untagged bridge is ours when Berth chose the name (it passes over names in use):
        // the crash came between making it and tagging it. A name from `-o bridge=` may be
        // someone else's bridge that the create was about to refuse.
        case "creating":
          if (present) {
            const named = Object.hasOwn(snapshot.context.options, "bridge");
            await plumbing.deleteBridge(bridge, { orUntagged: !named });
          }
          return [failed(`${INTERRUPTED} before the bridge was answered`)];
        case "repairing":
          return present ? [{ type: "effect.succeeded" }] : [failed(`bridge ${bridge} missing`)];
        // Asked for and logged: finish it; a resent DeleteNetwork then finds nothing to do.
        case "deleting":
          if (present) await plumbing.deleteBridge(bridge);
          return [{ type: "effect.succeeded" }];
        // A bridge that is there but down, unaddressed or resized is repaired as a lost one
        // (creating it again is idempotent): the event's reason says which.
        case "ready":
        case "broken": {
          const drift = bridgeDrift(snapshot, links.get(bridge));
          return drift === null ? [] : [{ type: "network.bridge.lost", reason: drift }];
        }
        default:
          return [];
      }
    },
  };
}

/**
 * Effects of endpoint actors: one veth pair each, host end on the network's bridge. On a cluster
 * (`fabric`) the network may have been made on another node: its bridge and VXLAN device are made
 * here first, and the peer gets the endpoint's MAC, which the other nodes forward to.
 */
export function createEndpointEffects(
  plumbing: NetPlumbing,
  survey: LinkSurvey = sharedLinkSurvey(plumbing),
  fabric?: Fabric,
): Effects<Map<string, LinkState>, EndpointSnapshot> {
  return {
    check() {},
    async run(intent) {
      switch (intent.type) {
        case "intent.veth.create":
          if (fabric !== undefined) {
            await fabric.attach(intent.network, intent.bridge, intent.mtu, { bridgeToo: true });
          }
          await plumbing.createVeth(intent.host, intent.peer, {
            ...vethOptions(intent.bridge, intent.mtu),
            ...(fabric !== undefined && intent.mac !== "" ? { peerMac: intent.mac } : {}),
          });
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
      if (othersOn(fabric, snapshot.context)) return [];
      const link = links.get(snapshot.context.host);
      // An interrupted DeleteEndpoint is finished: dockerd forgets the endpoint either way.
      if (link !== undefined && String(snapshot.value) === "deleting") {
        await plumbing.deleteVeth(snapshot.context.host);
      }
      return endpointDrift(snapshot, link);
    },
  };
}

function endpointDrift(snapshot: EndpointSnapshot, link: LinkState | undefined): EventFields[] {
  const present = link !== undefined;
  switch (String(snapshot.value)) {
    // The caller was never answered and retries or rolls back; either way a pair that exists
    // must be known, so that DeleteEndpoint removes it rather than leak it.
    case "joining":
      return present ? [{ type: "effect.succeeded" }] : [failed(`${INTERRUPTED} before the veth`)];
    case "deleting":
      return [{ type: "effect.succeeded" }];
    // A container uses the pair: its host end must be up on the bridge, or the container is cut
    // off (its bridge was made again, or someone changed the link). Joining again repairs it.
    case "joined": {
      const drift = vethDrift(snapshot, link);
      return drift === null ? [] : [{ type: "endpoint.veth.lost", reason: drift }];
    }
    default:
      return [];
  }
}

/** What is wrong with a network's bridge, or null when it is as the log says. */
function bridgeDrift(snapshot: NetworkSnapshot, link: LinkState | undefined): string | null {
  const { bridge, gateway, mtu } = snapshot.context;
  if (link === undefined) return `bridge ${bridge} is gone`;
  const wrong = [
    link.up ? null : "down",
    gateway === null || link.addresses.includes(gateway) ? null : `without address ${gateway}`,
    mtu === null || link.mtu === mtu ? null : `at MTU ${link.mtu}, not ${mtu}`,
  ].filter((part) => part !== null);
  return wrong.length === 0 ? null : `bridge ${bridge} is ${wrong.join(", ")}`;
}

/** What is wrong with a joined endpoint's host veth, or null when it is as the log says. */
function vethDrift(snapshot: EndpointSnapshot, link: LinkState | undefined): string | null {
  const { host, bridge, mtu } = snapshot.context;
  if (link === undefined) return `veth ${host} is gone`;
  const wrong = [
    link.master === bridge ? null : `on ${link.master ?? "no bridge"}, not ${bridge}`,
    link.up ? null : "down",
    mtu === null || link.mtu === mtu ? null : `at MTU ${link.mtu}, not ${mtu}`,
  ].filter((part) => part !== null);
  return wrong.length === 0 ? null : `veth ${host} is ${wrong.join(", ")}`;
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
