// A network across the nodes of a cluster: on each node, the network's bridge (made by the node
// that serves its endpoint when another node created it) joined to the other nodes' bridges by a
// VXLAN device, whose forwarding entries follow the endpoint records of the shared log. Every
// node's copy of the bridge carries the gateway address with the same MAC: each node is the
// gateway of its own containers, and an ARP request for it stays on the node (neigh_suppress on
// the VXLAN port), so a node that goes down takes no other node's gateway with it.
import type { EndpointContext } from "../../machines/endpoint_machine.ts";
import type { NetworkContext } from "../../machines/network_machine.ts";
import type { NetPlumbing } from "../backends/net_plumbing.ts";
import {
  FLOOD_MAC,
  gatewayMac,
  VXLAN_MTU,
  vxlanId,
  vxlanName,
  type VxlanPlumbing,
} from "../backends/vxlan_plumbing.ts";
import type { LogRecord } from "../log/store.ts";

/** What the fabric reads of an actor: its context and state. */
type Seen<C> = { context: C; value: unknown };

export type Fabric = {
  /** This node's name and underlay address. */
  node: string;
  advertise: string;
  /**
   * Makes the network's VXLAN device on `bridge` (and the bridge itself when `bridgeToo`, with
   * the network's gateway address and MAC), then the forwarding entries of every endpoint other
   * nodes have on it.
   */
  attach(
    network: string,
    bridge: string,
    mtu: number | null,
    options: { bridgeToo: boolean },
  ): Promise<void>;
  /** Deletes the network's VXLAN device (and, with `bridge`, this node's copy of its bridge). */
  detach(network: string, bridge?: string): Promise<void>;
  /** Hears a record once applied (engine.observe): other nodes' endpoints and networks. */
  heard(record: LogRecord, snapshot: Seen<unknown>): void;
  /** Takes up the VXLAN devices a previous run of this node left (after a restart). */
  resume(networks: Seen<NetworkContext>[], present: (name: string) => boolean): Promise<void>;
  /** Resolves once every change queued so far is done (tests). */
  settled(): Promise<void>;
};

type Entry = { network: string; mac: string; dst: string; address: string; bridge: string };

/** The fabric of node `node` at `advertise`, over `endpoints()` (the engine's, once it exists). */
export function createFabric(options: {
  node: string;
  advertise: string;
  plumbing: NetPlumbing;
  vxlan: VxlanPlumbing;
  endpoints: () => Seen<EndpointContext>[];
  warn: (message: string) => void;
}): Fabric {
  const { node, advertise, plumbing, vxlan, warn } = options;
  // The networks with a VXLAN device here, and the forwarding entries made, by endpoint id.
  const attached = new Set<string>();
  // Each network's gateway (CIDR), from its records: what this node's copy of its bridge carries.
  const gateways = new Map<string, string | null>();
  const installed = new Map<string, Entry>();
  // How many entries go to each node's address on each network: its flood entry is made with the
  // first and removed with the last, at a cost that does not grow with the endpoints.
  const perNode = new Map<string, number>();
  const nodeKey = (entry: { network: string; dst: string }) => `${entry.network} ${entry.dst}`;
  // One change at a time, in the order heard: an endpoint's delete never overtakes its create.
  let queue: Promise<void> = Promise.resolve();
  const queued = (work: () => Promise<void>): Promise<void> => {
    const next = queue.then(work);
    queue = next.catch(() => {});
    return next;
  };

  const remote = (context: { node?: string }) =>
    context.node !== undefined && context.node !== node;
  const alive = (value: unknown) => value !== "gone" && value !== "absent";

  async function install(id: string, context: EndpointContext): Promise<void> {
    const { networkId: network, mac, underlay: dst, bridge } = context;
    if (installed.has(id) || !attached.has(network) || dst === undefined || mac === "") return;
    const device = vxlanName(network);
    const address = context.address.split("/")[0]!;
    const entry = { network, mac, dst, address, bridge };
    const others = perNode.get(nodeKey(entry)) ?? 0;
    if (others === 0) await vxlan.addForwarding(device, FLOOD_MAC, dst);
    await vxlan.addForwarding(device, mac, dst);
    if (address !== "") await vxlan.addNeighbour(device, bridge, address, mac);
    installed.set(id, entry);
    perNode.set(nodeKey(entry), others + 1);
  }

  async function uninstall(id: string): Promise<void> {
    const entry = installed.get(id);
    if (entry === undefined) return;
    installed.delete(id);
    const left = (perNode.get(nodeKey(entry)) ?? 1) - 1;
    if (left > 0) perNode.set(nodeKey(entry), left);
    else perNode.delete(nodeKey(entry));
    const device = vxlanName(entry.network);
    if (entry.address !== "") {
      await vxlan.removeNeighbour(device, entry.bridge, entry.address, entry.mac);
    }
    await vxlan.removeForwarding(device, entry.mac, entry.dst);
    if (left === 0) await vxlan.removeForwarding(device, FLOOD_MAC, entry.dst);
  }

  async function attachNow(
    network: string,
    bridge: string,
    mtu: number | null,
    bridgeToo: boolean,
  ) {
    if (bridgeToo) {
      const gateway = gateways.get(network) ?? null;
      await plumbing.createBridge(bridge, {
        mtu: mtu ?? VXLAN_MTU,
        mac: gatewayMac(network),
        ...(gateway === null ? {} : { address: gateway }),
      });
    }
    try {
      await vxlan.createVxlan(vxlanName(network), {
        vni: vxlanId(network),
        local: advertise,
        bridge,
        mtu: mtu ?? VXLAN_MTU,
      });
    } catch (error) {
      // A copy of the bridge made for this first Join serves nothing yet: it goes again.
      if (bridgeToo && !attached.has(network)) await plumbing.deleteBridge(bridge).catch(() => {});
      throw error;
    }
    // The other nodes' endpoints are looked up once per network, not at every Join: from then
    // on their records reach heard().
    if (attached.has(network)) return;
    attached.add(network);
    for (const { context, value } of options.endpoints()) {
      if (context.networkId === network && remote(context) && alive(value)) {
        await install(context.id, context);
      }
    }
  }

  async function detachNow(network: string, bridge?: string) {
    for (const [id, entry] of installed) {
      if (entry.network !== network) continue;
      installed.delete(id);
      perNode.delete(nodeKey(entry));
    }
    attached.delete(network);
    await vxlan.deleteVxlan(vxlanName(network));
    if (bridge !== undefined) await plumbing.deleteBridge(bridge);
  }

  const logged = (what: string) => (error: unknown) =>
    warn(`Cannot ${what}: ${error instanceof Error ? error.message : String(error)}`);

  return {
    node,
    advertise,
    attach: (network, bridge, mtu, { bridgeToo }) =>
      queued(() => attachNow(network, bridge, mtu, bridgeToo)),
    detach: (network, bridge) => queued(() => detachNow(network, bridge)),
    heard(record, snapshot) {
      if (record.actor.startsWith("endpoint/")) {
        const context = snapshot.context as EndpointContext;
        if (!remote(context)) return;
        const id = record.actor.slice("endpoint/".length);
        const work = alive(snapshot.value) ? () => install(id, context) : () => uninstall(id);
        queued(work).catch(logged(`update the forwarding of endpoint "${id.slice(0, 12)}"`));
      } else if (record.actor.startsWith("network/")) {
        const context = snapshot.context as NetworkContext;
        if (snapshot.value !== "gone") {
          gateways.set(context.id, context.gateway);
          return;
        }
        gateways.delete(context.id);
        // Another node deleted it (it had no endpoint left anywhere): this node's copy goes too,
        // even when this node made the network (dockerd's with a cluster store send DeleteNetwork
        // to the node that ran `docker network rm`). A delete made here has detached already.
        if (!attached.has(context.id)) return;
        queued(() => detachNow(context.id, context.bridge))
          .catch(logged(`remove network "${context.id.slice(0, 12)}" from this node`));
      }
    },
    async resume(networks, present) {
      for (const { context, value } of networks) {
        if (alive(value)) gateways.set(context.id, context.gateway);
      }
      for (const { context, value } of networks) {
        if (!alive(value) || !present(vxlanName(context.id))) continue;
        await queued(() => attachNow(context.id, context.bridge, context.mtu, false))
          .catch(logged(`take up the VXLAN device of network "${context.id.slice(0, 12)}"`));
      }
    },
    settled: () => queue,
  };
}
