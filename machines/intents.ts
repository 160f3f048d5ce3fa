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
  }
  | { type: "intent.veth.delete"; endpoint: string; host: string };

/** Every intent any machine can emit. */
export type Intent = VolumeIntent | NetworkIntent | EndpointIntent;
