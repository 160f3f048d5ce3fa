// Linux plumbing behind the network driver: Berth's bridges and veth pairs, made with iproute2's
// `ip` (arguments as a list, never a shell). Knows nothing of the engine; failures are BackendError.
import { runTool, ToolFailed } from "./_tool.ts";
import { z } from "zod";
import { BackendError } from "./volume_backend.ts";

export { BERTH_LINK_PREFIX, bridgeName, vethNames } from "./link_names.ts";

// Only names of our own shape reach a mutating command: the process runs as root in the host
// netns, so a stray "eth0" or "lo" must never get as far as `ip link del`.
const BERTH_NAME_REGEXP = /^bth[0-9a-z]{1,12}$/;
const LINK_NAME_REGEXP = /^[0-9A-Za-z][0-9A-Za-z_.-]{0,14}$/;
// iproute2 6.x says `Cannot find device "x"` (del, set) or `Device "x" does not exist.` (show)
// when the name is unknown, and the kernel's "No such device" when the link vanished between ip
// looking its name up and asking for the change: the same fact, a link that is not there.
const MISSING_LINK_REGEXP =
  /Cannot find device|Device "[^"]*" does not exist|RTNETLINK answers: No such device/;
// How often a create starts over when a link it works on vanishes under it (someone deleting it
// at that moment); more than twice in a row is not a race any more.
const CREATE_ATTEMPTS = 3;

/** An `ip` command failed because the link it named vanished: the caller may start over. */
class LinkVanishedError extends BackendError {}

/** A link as reconcile sees it; `kind` is "" for links without one (lo, physical NICs). */
export type LinkInfo = {
  name: string;
  kind: string;
  master: string | null;
  up: boolean;
  /** The link's alias: the owner tag of the Berth that made it, or null. */
  owner: string | null;
};

/** A link as reconcile compares it with what the log says it should be. */
export type LinkState = LinkInfo & {
  mtu: number;
  /** Its IPv4 addresses, in CIDR form ("198.18.7.1/24"). */
  addresses: string[];
};

/**
 * Bridges and veth pairs in one network namespace; every method is idempotent. With an owner,
 * Berth uses and deletes only bridges tagged with it (made by this Berth), and never touches a
 * veth tagged by another owner.
 */
export interface NetPlumbing {
  /**
   * Makes (or reuses its own) bridge `name`, with `mtu`, `address` (CIDR) and `mac` when given,
   * and up.
   * Refuses a link of that name that another owner tagged, or that no one tagged.
   */
  createBridge(
    name: string,
    options: { mtu?: number; address?: string; mac?: string },
  ): Promise<void>;
  /**
   * Deletes bridge `name` if this Berth made it (or, with `orUntagged`, if no one tagged it: a
   * crash between making and tagging it); a missing one is fine, anyone else's is left alone.
   */
  deleteBridge(name: string, options?: { orUntagged?: boolean }): Promise<void>;
  /**
   * Makes the pair host/peer here, host end on `bridge` and up, the peer at `peerMac` when given;
   * repairs a half-made pair.
   */
  createVeth(
    host: string,
    peer: string,
    options: { bridge: string; mtu?: number; peerMac?: string },
  ): Promise<void>;
  /**
   * Deletes the pair through its host end, wherever the peer is; a missing pair is fine, one
   * another owner tagged is left alone.
   */
  deleteVeth(host: string): Promise<void>;
  linkExists(name: string): Promise<boolean>;
  /** Every link in the namespace by name, with its addresses, from one `ip -json addr` call. */
  linkStates(): Promise<Map<string, LinkState>>;
  /** Links whose names start with `prefix`. */
  listLinks(prefix: string): Promise<LinkInfo[]>;
}

// Only the fields we read; `ip -json` prints many more. `link` names a veth's peer while it is in
// the same netns; once moved away only `link_netnsid`/`link_index` remain.
/** A MAC as `ip` prints it: six lowercase hex pairs. */
const MAC_REGEXP = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

const IpLink = z.object({
  ifname: z.string(),
  flags: z.array(z.string()),
  mtu: z.number(),
  master: z.string().optional(),
  link: z.string().nullable().optional(),
  link_netnsid: z.number().optional(),
  linkinfo: z.object({ info_kind: z.string().optional() }).optional(),
  ifalias: z.string().optional(),
  /** Its MAC address. */
  address: z.string().optional(),
  // Only in `ip addr show` output.
  addr_info: z.array(z.object({
    family: z.string().optional(),
    local: z.string().optional(),
    prefixlen: z.number().optional(),
  })).optional(),
});
type IpLink = z.infer<typeof IpLink>;

function kindOf(link: IpLink): string {
  return link.linkinfo?.info_kind ?? "";
}

function infoOf(link: IpLink): LinkInfo {
  return {
    name: link.ifname,
    kind: kindOf(link),
    master: link.master ?? null,
    up: link.flags.includes("UP"),
    owner: link.ifalias ?? null,
  };
}

function checkName(name: string, berthOnly: boolean): void {
  const ok = berthOnly ? BERTH_NAME_REGEXP.test(name) : LINK_NAME_REGEXP.test(name);
  if (!ok) throw new BackendError(`Cannot use link name "${name}": not a Berth link name`);
}

/**
 * Plumbing through `ip`; `netns` runs every command as `ip -n <netns> …` (tests use one). `owner`
 * is written as the alias of every bridge and host veth made, so that reconcile can tell this
 * Berth's links from another Berth's on the same host.
 */
export function createIpPlumbing(
  options: { netns?: string; ip?: string; owner?: string } = {},
): NetPlumbing {
  const binary = options.ip ?? "ip";
  const owner = options.owner;
  const prefix = options.netns === undefined ? [] : ["-n", options.netns];

  // Resolves to stdout, or to null when `missingOk` and the link named in the command is absent.
  async function run(args: string[], missingOk = false): Promise<string | null> {
    try {
      return await runTool(binary, prefix, args);
    } catch (error) {
      if (!(error instanceof ToolFailed)) throw error;
      const missing = MISSING_LINK_REGEXP.test(error.stderr);
      if (missingOk && missing) return null;
      throw missing ? new LinkVanishedError(error.message) : new BackendError(error.message);
    }
  }

  // A create is a few commands on links found a moment before; one that vanished in between
  // (deleted by hand, or its peer's namespace gone) sends the create back to its first look.
  async function startingOver(work: () => Promise<void>): Promise<void> {
    for (let attempt = 1;; attempt++) {
      try {
        return await work();
      } catch (error) {
        if (!(error instanceof LinkVanishedError) || attempt === CREATE_ATTEMPTS) throw error;
      }
    }
  }

  async function links(args: string[], object = "link"): Promise<IpLink[]> {
    const stdout = await run(["-json", "-details", object, "show", ...args], true);
    if (stdout === null) return [];
    let json: unknown;
    try {
      json = JSON.parse(stdout);
    } catch (cause) {
      throw new BackendError(`Cannot read the output of ip link show: ${String(cause)}`, { cause });
    }
    const parsed = z.array(IpLink).safeParse(json);
    if (!parsed.success) {
      throw new BackendError(`Cannot read the output of ip link show: ${parsed.error.message}`);
    }
    return parsed.data;
  }

  async function find(name: string): Promise<IpLink | null> {
    return (await links(["dev", name]))[0] ?? null;
  }

  // `ip link add … alias` is accepted but not applied (iproute2 6.1), hence a second command.
  async function tag(name: string, link: IpLink | null): Promise<void> {
    if (owner !== undefined && link?.ifalias !== owner) {
      await run(["link", "set", "dev", name, "alias", owner]);
    }
  }

  async function remove(name: string): Promise<void> {
    await run(["link", "del", "dev", name], true);
  }

  // The peer counts as ours when it sits beside the host end or has left this netns (a container
  // holds it between Join and Leave); any other state means a crash left the pair half made.
  function pairIsWhole(host: IpLink | null, peer: string): host is IpLink {
    return host !== null && kindOf(host) === "veth" &&
      (host.link === peer || (host.link == null && host.link_netnsid !== undefined));
  }

  // Another owner's link is never ours to change or delete, whatever its name.
  function othersLink(link: IpLink | null): string | null {
    const tagged = link?.ifalias;
    return owner === undefined || tagged === undefined || tagged === owner ? null : tagged;
  }

  async function makeBridge(
    name: string,
    mtu?: number,
    address?: string,
    mac?: string,
  ): Promise<void> {
    const existing = await find(name);
    if (existing !== null) checkOwnBridge(name, existing);
    const mtuArgs = mtu === undefined ? [] : ["mtu", String(mtu)];
    if (mac !== undefined && !MAC_REGEXP.test(mac)) {
      throw new BackendError(`Cannot give bridge "${name}" MAC "${mac}": not a MAC address`);
    }
    if (existing === null) {
      const macArgs = mac === undefined ? [] : ["address", mac];
      await run(["link", "add", "name", name, ...mtuArgs, ...macArgs, "type", "bridge"]);
      // Tagged at once: the only untagged moment of a bridge of ours is between two commands.
      try {
        await tag(name, null);
      } catch (error) {
        await remove(name).catch(() => {});
        throw error;
      }
    } else {
      if (mtu !== undefined && existing.mtu !== mtu) {
        await run(["link", "set", "dev", name, ...mtuArgs]);
      }
      if (mac !== undefined && existing.address !== mac) {
        await run(["link", "set", "dev", name, "address", mac]);
      }
    }
    // `replace` succeeds when the address is already there, where `add` says "File exists".
    if (address !== undefined) await run(["addr", "replace", address, "dev", name]);
    if (existing === null || !existing.flags.includes("UP")) {
      await run(["link", "set", "dev", name, "up"]);
    }
  }

  function checkOwnBridge(name: string, link: IpLink): void {
    const kind = kindOf(link);
    const other = othersLink(link);
    const problem = kind !== "bridge"
      ? `a ${kind || "device"} link has that name`
      : other !== null
      ? `it belongs to ${other}`
      : owner !== undefined && link.ifalias !== owner
      ? "it is not Berth's (no owner tag): Berth uses only bridges it makes"
      : null;
    if (problem !== null) throw new BackendError(`Cannot create bridge "${name}": ${problem}`);
  }

  async function makeVeth(
    host: string,
    peer: string,
    bridge: string,
    mtu?: number,
    peerMac?: string,
  ) {
    const mtuArgs = mtu === undefined ? [] : ["mtu", String(mtu)];
    let existing = await find(host);
    const other = othersLink(existing);
    if (other !== null) {
      throw new BackendError(`Cannot create veth "${host}": it belongs to ${other}`);
    }
    if (!pairIsWhole(existing, peer)) {
      // Both names were free when the endpoint was created and are recorded as its own, and no
      // other owner tagged the host end: whatever holds them is a leftover of this endpoint.
      if (existing !== null) await remove(host);
      await remove(peer);
      // One command, so a missing bridge fails before anything exists: no half pair behind.
      const add = ["link", "add", "name", host, ...mtuArgs, "master", bridge, "up"];
      const macArgs = peerMac === undefined ? [] : ["address", peerMac];
      await run([...add, "type", "veth", "peer", "name", peer, ...mtuArgs, ...macArgs]);
      existing = await find(host);
      if (existing === null) {
        throw new LinkVanishedError(`Cannot find veth "${host}" after creating it`);
      }
    }
    const wrongMtu = mtu !== undefined && existing.mtu !== mtu;
    if (existing.master !== bridge || !existing.flags.includes("UP") || wrongMtu) {
      await run(["link", "set", "dev", host, ...mtuArgs, "master", bridge, "up"]);
    }
    if (wrongMtu && existing.link === peer) await run(["link", "set", "dev", peer, ...mtuArgs]);
    await tag(host, existing);
  }

  return {
    createBridge(name, { mtu, address, mac }) {
      checkName(name, true);
      return startingOver(() => makeBridge(name, mtu, address, mac));
    },

    async deleteBridge(name, options = {}) {
      checkName(name, true);
      if (owner === undefined) return await remove(name);
      const link = await find(name);
      if (link === null) return;
      const tagged = link.ifalias ?? null;
      if (tagged === owner || (tagged === null && options.orUntagged)) await remove(name);
    },

    createVeth(host, peer, { bridge, mtu, peerMac }) {
      for (const name of [host, peer, bridge]) checkName(name, true);
      if (peerMac !== undefined && !MAC_REGEXP.test(peerMac)) {
        throw new BackendError(`Cannot give veth "${peer}" MAC "${peerMac}": not a MAC address`);
      }
      return startingOver(() => makeVeth(host, peer, bridge, mtu, peerMac));
    },

    async deleteVeth(host) {
      checkName(host, true);
      // Untagged is ours too: a veth is tagged last, after a crash may have cut in.
      if (othersLink(await find(host)) === null) await remove(host);
    },

    async linkExists(name) {
      checkName(name, false);
      return (await find(name)) !== null;
    },

    async linkStates() {
      const states = new Map<string, LinkState>();
      for (const link of await links([], "addr")) {
        const addresses = (link.addr_info ?? [])
          .filter((addr) => addr.family === "inet" && addr.local !== undefined)
          .map((addr) => `${addr.local}/${addr.prefixlen}`);
        states.set(link.ifname, { ...infoOf(link), mtu: link.mtu, addresses });
      }
      return states;
    },

    async listLinks(namePrefix) {
      return (await links([]))
        .filter((link) => link.ifname.startsWith(namePrefix))
        .map(infoOf);
    },
  };
}
