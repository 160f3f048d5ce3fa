// The names of Berth's links, derived from the ids dockerd chose. Pure: no I/O. Which candidate a
// network or endpoint gets is the engine's call (it knows what is taken) and goes into the log.

/** Every interface Berth creates starts with this, so reconcile can find leftovers by name. */
export const BERTH_LINK_PREFIX = "bth";

// 4 + 11 = 15 characters, Linux's IFNAMSIZ - 1. A fixed length keeps names easy to spot.
const ID_CHARS = 11;
const HEX_ID_REGEXP = /^[0-9a-f]{11,64}$/;

function idParts(id: string): string[] {
  if (!HEX_ID_REGEXP.test(id)) {
    throw new Error(`Cannot derive a link name from id "${id}": not a lowercase hex id`);
  }
  return Array.from({ length: id.length - ID_CHARS + 1 }, (_, i) => id.slice(i, i + ID_CHARS));
}

/**
 * The names a network's bridge may take, best first: "bthb" + 11 hex chars of its id from its
 * start, then from one further along, and so on. Two ids that share their first 11 chars (44 bits,
 * rare by chance, easy on purpose) would otherwise share a bridge.
 */
export function bridgeNames(networkId: string): string[] {
  return idParts(networkId).map((part) => `${BERTH_LINK_PREFIX}b${part}`);
}

/** The first of bridgeNames: what a network's bridge is called unless that name is taken. */
export function bridgeName(networkId: string): string {
  return bridgeNames(networkId)[0]!;
}

/**
 * The names an endpoint's veth pair may take, best first, as bridgeNames: host end on the
 * bridge ("bthh…"), peer handed to libnetwork as SrcName ("bthc…"), with the same 11 chars.
 */
export function vethNameChoices(endpointId: string): { host: string; peer: string }[] {
  return idParts(endpointId).map((part) => ({
    host: `${BERTH_LINK_PREFIX}h${part}`,
    peer: `${BERTH_LINK_PREFIX}c${part}`,
  }));
}

/** The first of vethNameChoices. */
export function vethNames(endpointId: string): { host: string; peer: string } {
  return vethNameChoices(endpointId)[0]!;
}
