// VolumeDriver commands over volume actors: the transport asks for a mount and gets a mountpoint,
// and never builds a machine event or reads a machine's context itself.
import { totalMounts, type VolumeSnapshot } from "../../machines/volume_machine.ts";
import type { ActorId } from "../../machines/mod.ts";
import type { Engine } from "./engine.ts";
import { IllegalStateError } from "./errors.ts";

export type VolumeServiceOptions = {
  /** On a log several Berths share: this node, recorded on the volumes it makes. */
  node?: string;
  /**
   * Whether a volume with these options can be used from any node (its backend reaches shared
   * storage); one that cannot is mounted and removed only on the node that made it.
   */
  anywhere?: (opts: Record<string, string>) => boolean;
};

/** A volume as Docker is told of it. */
export type VolumeState = {
  name: string;
  /** Where the data is; "" until creation succeeded. */
  mountpoint: string;
  createdAt: number;
  state: string;
  /** How many Mounts without Unmount hold it. */
  mounts: number;
  /** Why it is `missing`, when it is. */
  problem: string | null;
  /** On a log several Berths share: the Mounts held, by node. */
  nodes?: Record<string, number>;
};

export type VolumeService = {
  /** Creating a volume that exists succeeds and changes nothing (dockerd asks again). */
  create(name: string, opts: Record<string, string>): Promise<void>;
  remove(name: string): Promise<void>;
  /** Resolves with the mountpoint once the Mount is on disk. */
  mount(name: string, mountId: string): Promise<string>;
  unmount(name: string, mountId: string): Promise<void>;
  /** The mountpoint while mounted, else "". */
  path(name: string): Promise<string>;
  get(name: string): Promise<VolumeState>;
  /** Every volume Docker should see (created, not yet removed), by name. */
  /** Every volume Docker should see, by name, each as it stands on disk. */
  list(): Promise<VolumeState[]>;
};

/** Volume states Docker should see: creation done, removal not done. */
const VISIBLE = new Set(["unmounted", "mounting", "mounted", "unmounting", "removing", "missing"]);

const volumeId = (name: string): ActorId<"volume"> => `volume/${name}`;

/**
 * A mount as the volume counts it: on a shared log, `node/ID`, so that each node's Mounts are its
 * own (an Unmount on one node never drops another's) and can be counted per node.
 */
function mountKey(node: string | undefined, mountId: string): string {
  return node === undefined ? mountId : `${node}/${mountId}`;
}

/** Mounts held per node, from `node/ID` keys. */
function byNode(snapshot: VolumeSnapshot): Record<string, number> {
  const nodes: Record<string, number> = {};
  for (const [key, count] of snapshot.context.mounts) {
    const node = key.slice(0, Math.max(0, key.indexOf("/")));
    nodes[node] = (nodes[node] ?? 0) + count;
  }
  return nodes;
}

function stateOf(snapshot: VolumeSnapshot, shared = false): VolumeState {
  const { context } = snapshot;
  return {
    ...(shared ? { nodes: byNode(snapshot) } : {}),
    name: context.name,
    mountpoint: context.mountpoint,
    createdAt: context.createdAt,
    state: String(snapshot.value),
    mounts: totalMounts(context),
    problem: context.problem,
  };
}

export function createVolumeService(
  engine: Engine,
  options: VolumeServiceOptions = {},
): VolumeService {
  const { node } = options;
  const anywhere = options.anywhere ?? (() => false);
  /** Refuses `what` of a volume whose data is on another node's host. */
  const onItsNode = (snapshot: VolumeSnapshot, what: string) => {
    const owner = snapshot.context.node;
    if (node === undefined || owner === undefined || owner === node) return;
    if (anywhere(snapshot.context.opts)) return;
    throw new IllegalStateError(
      `Cannot ${what} volume "${snapshot.context.name}": its data is on node "${owner}" ` +
        `(a local directory there); ${what} it on that node`,
    );
  };
  return {
    async create(name, opts) {
      await engine.dispatch(volumeId(name), {
        type: "volume.create",
        opts,
        ...(node === undefined ? {} : { node }),
      });
    },
    async remove(name) {
      await engine.dispatch(volumeId(name), (snapshot) => {
        // In use: the machine's refusal says so, wherever it is.
        if (totalMounts(snapshot.context) === 0) onItsNode(snapshot, "remove");
        return { type: "volume.remove" };
      });
    },
    async mount(name, mountId) {
      const snapshot = await engine.dispatch(volumeId(name), (snapshot) => {
        onItsNode(snapshot, "mount");
        return { type: "volume.mount", mountId: mountKey(node, mountId) };
      });
      return stateOf(snapshot).mountpoint;
    },
    async unmount(name, mountId) {
      await engine.dispatch(volumeId(name), (snapshot) => {
        onItsNode(snapshot, "unmount");
        return { type: "volume.unmount", mountId: mountKey(node, mountId) };
      });
    },
    async path(name) {
      const volume = stateOf(await engine.read(volumeId(name)));
      return volume.mounts > 0 ? volume.mountpoint : "";
    },
    async get(name) {
      return stateOf(await engine.read(volumeId(name)), node !== undefined);
    },
    async list() {
      // What is shown must be on disk: a volume whose create is still being written is not
      // answered for before that write, as Get is not (read() waits the same way). While the
      // disk is stalled, what is on disk is shown at once instead of waiting for it.
      let actors = engine.settledWhileStalled("volume");
      if (actors === null) {
        actors = engine.list("volume");
        await engine.flush();
      }
      const volumes = actors
        .filter(([, snapshot]) => VISIBLE.has(String(snapshot.value)))
        .map(([, snapshot]) => stateOf(snapshot, node !== undefined));
      return volumes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },
  };
}
