// Intents: the plain-data requests for work that machines emit and the engine carries out.
// Imports nothing: a machine says what should happen, never how.

/** Work a volume machine asks the engine to do through a volume backend. */
export type VolumeIntent =
  | { type: "intent.create"; volume: string; opts: Record<string, string> }
  | { type: "intent.mount"; volume: string; mountId: string }
  | { type: "intent.unmount"; volume: string; mountId: string }
  | { type: "intent.remove"; volume: string };

/** Work a network machine asks for: its Linux bridge, carrying the gateway address if any. */
export type NetworkIntent =
  | {
    type: "intent.bridge.create";
    network: string;
    bridge: string;
    mtu: number | null;
    /** CIDR of the gateway on the bridge, e.g. "198.18.7.1/24", or null. */
    address: string | null;
  }
  | { type: "intent.bridge.delete"; network: string; bridge: string };

/** Work an endpoint machine asks for: its veth pair, host end on the network's bridge. */
export type EndpointIntent =
  | {
    type: "intent.veth.create";
    endpoint: string;
    host: string;
    peer: string;
    bridge: string;
    mtu: number | null;
    /** The endpoint's network (its VXLAN device, on a cluster) and the peer's MAC ("" if none). */
    network: string;
    mac: string;
  }
  | { type: "intent.veth.delete"; endpoint: string; host: string };

/** Every intent any machine can emit. */
export type Intent = VolumeIntent | NetworkIntent | EndpointIntent;

/**
 * What each intent does, as the start of a failure message: `Cannot <phrase> "<name>": why`. Kept
 * beside the intents so that a new one cannot go without its wording.
 */
export const INTENT_PHRASES: Record<Intent["type"], string> = {
  "intent.create": "create volume",
  "intent.mount": "mount volume",
  "intent.unmount": "unmount volume",
  "intent.remove": "remove volume",
  "intent.bridge.create": "create the bridge of network",
  "intent.bridge.delete": "delete the bridge of network",
  "intent.veth.create": "create the veth pair of endpoint",
  "intent.veth.delete": "delete the veth pair of endpoint",
};
