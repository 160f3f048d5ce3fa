// Linux plumbing that joins one network's bridges across hosts: a VXLAN device per network on each
// node, and its forwarding entries (`bridge fdb`) naming the other nodes' containers. Made with
// iproute2's `ip` and `bridge` (arguments as a list, never a shell). Knows nothing of the engine.
import { runTool, ToolFailed } from "./_tool.ts";
import { BERTH_LINK_PREFIX } from "./link_names.ts";
import { BackendError } from "./volume_backend.ts";

/** The UDP port of VXLAN (IANA). */
export const VXLAN_PORT = 4789;
/** 1500 of a usual underlay minus VXLAN's 50 bytes of outer headers. */
export const VXLAN_MTU = 1450;
/** The MAC of a flood entry: frames for unknown MACs (ARP broadcasts) go to every such `dst`. */
export const FLOOD_MAC = "00:00:00:00:00:00";

const VXLAN_NAME_REGEXP = /^bthv[0-9a-f]{11}$/;
const MAC_REGEXP = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const IPV4_REGEXP = /^\d{1,3}(\.\d{1,3}){3}$/;
// The device is gone (deleted with its network), or the entry is not there: nothing to delete.
const ABSENT_REGEXP =
  /Cannot find device|does not exist|No such device|No such file or directory|not found/;

/** The VXLAN device of network `networkId`: "bthv" + its first 11 hex characters (15 in all). */
export function vxlanName(networkId: string): string {
  return `${BERTH_LINK_PREFIX}v${networkId.slice(0, 11)}`;
}

/**
 * The MAC of every node's copy of a cluster network's bridge, from its id: each node is the
 * gateway of its own containers at the same address and MAC. `02:b7:` keeps it apart from
 * containers' MACs (`02:42:…`).
 */
export function gatewayMac(networkId: string): string {
  const hex = networkId.slice(0, 8).padEnd(8, "0");
  return `02:b7:${hex.match(/../g)!.join(":")}`;
}

/** The VXLAN network identifier of `networkId`: its first 24 bits (never 0). */
export function vxlanId(networkId: string): number {
  return parseInt(networkId.slice(0, 6), 16) || 1;
}

/** A MAC for an endpoint dockerd gave none, from its IPv4 address as Docker's bridge does. */
export function macFromAddress(cidr: string): string {
  const octets = cidr.split("/")[0]!.split(".").map((part) => Number(part));
  return ["02", "42", ...octets.map((octet) => octet.toString(16).padStart(2, "0"))].join(":");
}

export interface VxlanPlumbing {
  /** Makes (or keeps its own) VXLAN device `name` on `bridge`, up; refuses another's link. */
  createVxlan(
    name: string,
    options: { vni: number; local: string; bridge: string; mtu: number },
  ): Promise<void>;
  /** Deletes VXLAN device `name` if this Berth made it; a missing one is fine. */
  deleteVxlan(name: string): Promise<void>;
  /** Frames for `mac` (FLOOD_MAC: broadcasts) leave `device` towards underlay address `dst`. */
  addForwarding(device: string, mac: string, dst: string): Promise<void>;
  /** Removes that entry; one already gone (or its device) is fine. */
  removeForwarding(device: string, mac: string, dst: string): Promise<void>;
  /**
   * `bridge` answers ARP for `address` (bare IPv4) with `mac`, which it sends out of `device`:
   * a permanent neighbour entry and a static bridge entry, so that an ARP request for another
   * node's endpoint is answered on this node (neigh_suppress) instead of flooded to every node.
   */
  addNeighbour(device: string, bridge: string, address: string, mac: string): Promise<void>;
  /** Removes those two; ones already gone (or their devices) are fine. */
  removeNeighbour(device: string, bridge: string, address: string, mac: string): Promise<void>;
}

/** VXLAN plumbing through `ip` and `bridge`, in namespace `netns` when given (`-n`). */
export function createVxlanPlumbing(
  options: { netns?: string; ip?: string; bridge?: string; owner?: string } = {},
): VxlanPlumbing {
  const prefix = options.netns === undefined ? [] : ["-n", options.netns];
  const owner = options.owner;

  async function run(binary: string, args: string[], absentOk = false): Promise<string | null> {
    try {
      return await runTool(binary, prefix, args);
    } catch (error) {
      if (!(error instanceof ToolFailed)) throw error;
      if (absentOk && ABSENT_REGEXP.test(error.stderr)) return null;
      throw new BackendError(error.message);
    }
  }
  const ip = (args: string[], absentOk = false) => run(options.ip ?? "ip", args, absentOk);
  const bridgeCommand = (args: string[], absentOk = false) =>
    run(options.bridge ?? "bridge", args, absentOk);

  async function find(name: string): Promise<{ kind: string; alias: string | null } | null> {
    const out = await ip(["-json", "-details", "link", "show", "dev", name], true);
    if (out === null) return null;
    const [link] = JSON.parse(out) as {
      linkinfo?: { info_kind?: string };
      ifalias?: string;
    }[];
    return link ? { kind: link.linkinfo?.info_kind ?? "", alias: link.ifalias ?? null } : null;
  }

  function check(name: string, mac?: string, dst?: string) {
    if (!VXLAN_NAME_REGEXP.test(name)) {
      throw new BackendError(`Cannot use link name "${name}": not a Berth VXLAN name`);
    }
    if (mac !== undefined && !MAC_REGEXP.test(mac)) {
      throw new BackendError(`Cannot forward to MAC "${mac}": not a MAC address`);
    }
    if (dst !== undefined && !IPV4_REGEXP.test(dst)) {
      throw new BackendError(`Cannot forward to "${dst}": not an IPv4 address`);
    }
  }

  return {
    async createVxlan(name, { vni, local, bridge, mtu }) {
      check(name, undefined, local);
      const existing = await find(name);
      if (
        existing !== null && (existing.kind !== "vxlan" || (owner !== undefined &&
          existing.alias !== null && existing.alias !== owner))
      ) {
        throw new BackendError(`Cannot create VXLAN device "${name}": another link has that name`);
      }
      if (existing === null) {
        // nolearning: where each MAC is comes from the log (the endpoints' records), not floods.
        await ip([
          "link",
          "add",
          name,
          "mtu",
          String(mtu),
          "type",
          "vxlan",
          "id",
          String(vni),
          "local",
          local,
          "dstport",
          String(VXLAN_PORT),
          "nolearning",
        ]);
      }
      if (owner !== undefined) await ip(["link", "set", "dev", name, "alias", owner]);
      await ip(["link", "set", "dev", name, "master", bridge, "up"]);
      // Every node's bridge answers for the gateway: an ARP request for it stays on this node.
      await bridgeCommand(["link", "set", "dev", name, "neigh_suppress", "on"]);
    },
    async deleteVxlan(name) {
      check(name);
      const existing = await find(name);
      if (existing === null) return;
      if (owner !== undefined && existing.alias !== null && existing.alias !== owner) return;
      await ip(["link", "del", "dev", name], true);
    },
    async addForwarding(device, mac, dst) {
      check(device, mac, dst);
      // The flood entry is one of a list (one per node): appended, and "exists" is fine.
      if (mac === FLOOD_MAC) {
        const out = await run(options.bridge ?? "bridge", [
          "fdb",
          "show",
          "dev",
          device,
        ]);
        if (out?.split("\n").some((line) => line.startsWith(`${mac} dst ${dst} `))) return;
        await bridgeCommand(["fdb", "append", mac, "dev", device, "dst", dst]);
        return;
      }
      await bridgeCommand(["fdb", "replace", mac, "dev", device, "dst", dst]);
    },
    async removeForwarding(device, mac, dst) {
      check(device, mac, dst);
      await bridgeCommand(["fdb", "del", mac, "dev", device, "dst", dst], true);
    },
    async addNeighbour(device, bridge, address, mac) {
      check(device, mac, address);
      await bridgeCommand(["fdb", "replace", mac, "dev", device, "master", "static"]);
      await ip(["neigh", "replace", address, "lladdr", mac, "dev", bridge, "nud", "permanent"]);
    },
    async removeNeighbour(device, bridge, address, mac) {
      check(device, mac, address);
      await ip(["neigh", "del", address, "dev", bridge], true);
      await bridgeCommand(["fdb", "del", mac, "dev", device, "master"], true);
    },
  };
}
