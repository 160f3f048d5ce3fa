// The config.json of Berth as a managed (v2) Docker plugin, and the paths inside its rootfs.
// dockerd reads it at `docker plugin create`; Berth reads only the env it puts in place.

/** Where Berth's code, deno.json and its DENO_DIR live inside the rootfs. */
export const APP_DIR = "/opt/berth";
export const DENO_DIR = `${APP_DIR}/deno-dir`;
export const DENO_BINARY = "/usr/bin/deno";
/** The socket file name; dockerd dials /run/docker/plugins/<id>/<it> on the host. */
export const SOCKET_NAME = "berth.sock";
/** dockerd binds the plugin's exec root here (docker-plugin-api.md §5). */
export const PLUGIN_SOCKET_DIR = "/run/docker/plugins";
/**
 * Volume data lives here: dockerd maps a Mountpoint strictly below it to the host side
 * (volume-driver.md §7), so containers bind the very directory Berth wrote.
 */
export const PROPAGATED_MOUNT = "/mnt/volumes";
/** The state mount's destination: the log, snapshots and lock (a host directory, settable). */
export const STATE_DIR = "/var/lib/berth";
export const DEFAULT_STATE_SOURCE = "/var/lib/berth";

type Env = { name: string; description: string; value: string | null; settable: string[] };

function fixed(name: string, value: string, description: string): Env {
  return { name, description, value, settable: [] };
}

function settable(name: string, value: string | null, description: string): Env {
  return { name, description, value, settable: ["value"] };
}

const ENV: Env[] = [
  fixed("DENO_DIR", DENO_DIR, "Deno's cache, filled when the plugin was built"),
  fixed("DENO_NO_UPDATE_CHECK", "1", "no network at start"),
  fixed("NO_COLOR", "1", "plain lines in dockerd's log"),
  fixed("BERTH_MANAGED_PLUGIN", "1", "INFO lines on stdout: dockerd logs them at level info"),
  fixed("BERTH_SOCKET", `${PLUGIN_SOCKET_DIR}/${SOCKET_NAME}`, "the socket dockerd dials"),
  fixed("BERTH_STATE_DIR", STATE_DIR, "the state mount"),
  fixed("BERTH_VOLUMES_DIR", PROPAGATED_MOUNT, "volume data, under propagatedMount"),
  settable(
    "BERTH_ADMIN",
    `${PLUGIN_SOCKET_DIR}/admin.sock`,
    "admin endpoint; on the host: /run/docker/plugins/<plugin id>/admin.sock; off for none",
  ),
  settable("BERTH_POOL_RANGE", null, "where IPAM picks pools (default 198.18.0.0/15)"),
  settable("BERTH_POOL_SIZE", null, "prefix length of such pools (default 24)"),
  settable("BERTH_RECONCILE", null, "report (default) or repair stray bth* links at start"),
  settable("BERTH_SNAPSHOT_EVERY", null, "snapshot after this many events"),
  settable("BERTH_SNAPSHOT_MIB", null, "or once the log grew by this many MiB"),
  settable("BERTH_KEEP_SNAPSHOTS", null, "full snapshots kept"),
  settable("BERTH_LOG_TIMEOUT", null, "seconds a change waits for the disk"),
  settable("BERTH_MAX_CONNECTIONS", null, "plugin socket connections served at once"),
  settable("BERTH_DEBUG", null, "1: stacks of internal errors in the log"),
  // One node of a cluster whose log is in etcd (README: "Beyond one host").
  settable("BERTH_STORE", null, "file (default) or etcd"),
  settable("BERTH_ETCD_ENDPOINTS", null, "on etcd: http://HOST:PORT,... of the members"),
  settable("BERTH_CLUSTER", null, "on etcd: the cluster's name (default berth)"),
  settable("BERTH_NODE", null, "on etcd: this node's name (set it: the default is the hostname)"),
  settable("BERTH_ADVERTISE_ADDRESS", null, "on etcd: this node's underlay IPv4, for networks"),
];

/** The whole config.json; every key Swagger marks required is present. */
export function pluginConfig(version: string) {
  return {
    description: `Berth ${version}: volume, network and IPAM driver whose state survives crashes`,
    documentation: "https://github.com/berth/berth#readme",
    entrypoint: [
      DENO_BINARY,
      "run",
      "--allow-all",
      // Everything was cached at build time: a start never reaches a registry.
      "--cached-only",
      "--frozen",
      `--config=${APP_DIR}/deno.json`,
      "--v8-flags=--max-semi-space-size=2",
      `${APP_DIR}/main.ts`,
      "serve",
    ],
    workdir: APP_DIR,
    interface: {
      types: ["docker.volumedriver/1.0", "docker.networkdriver/1.0", "docker.ipamdriver/1.0"],
      socket: SOCKET_NAME,
      protocolscheme: "",
    },
    // Bridges and veths are made in the host's network namespace.
    network: { type: "host" },
    propagatedMount: PROPAGATED_MOUNT,
    mounts: [{
      name: "state",
      description: "Berth's state directory on the host: survives disable, enable and upgrade",
      type: "bind",
      source: DEFAULT_STATE_SOURCE,
      destination: STATE_DIR,
      options: ["rbind", "rw"],
      settable: ["source"],
    }],
    linux: {
      capabilities: ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"],
      allowAllDevices: false,
      devices: [],
    },
    env: ENV,
    args: { name: "args", description: "extra berth serve flags", value: [], settable: ["value"] },
    ipchost: false,
    pidhost: false,
  };
}
