// `berth serve`: flags and environment → a running Berth until SIGINT or SIGTERM.
import { join } from "node:path";
import { type Cidr, DEFAULT_POOL_PREFIX, DEFAULT_POOL_RANGE, parseCidr } from "../backends/ipam.ts";
import {
  BackendsConfigError,
  type BackendSpec,
  readBackendsConfig,
} from "../backends/goplugin/config.ts";
import { type CheckpointPolicy, DEFAULT_CHECKPOINT_POLICY } from "../engine/checkpoint.ts";
import { HistoryCompactedError } from "../engine/snapshots.ts";
import { DEFAULT_SHARED_EVERY } from "../engine/shared_compaction.ts";
import { DEFAULT_STALL_MS, LogDamagedError, SymlinkRefusedError } from "../log/file_store.ts";
import { StateDirLockedError } from "../log/lock.ts";
import { SharedLogUnreadableError, StoreUnavailableError } from "../log/etcd_errors.ts";
import { startBerth } from "../start_berth.ts";
import type { HttpLimits } from "../transport/_http1.ts";
import { SocketInUseError } from "../transport/_unix_socket.ts";
import { defaultLimits } from "../transport/docker/server.ts";
import {
  type AdminAddress,
  AdminAddressError,
  describeAdminAddress,
  parseAdminAddress,
} from "../transport/admin/address.ts";
import { dirname, resolve } from "node:path";
import { missingPrivileges, NEEDS_ROOT } from "./_privileges.ts";
import { advertiseSetting, etcdSetting, type EtcdSettings } from "./_cluster_settings.ts";
import { inheritedSocketFd } from "../transport/_inherited_socket.ts";
import { callLevel, callLine } from "../transport/docker/call_log.ts";
import type { AnsweredCall } from "../transport/docker/routes.ts";
import {
  type Command,
  CommandError,
  DEFAULT_STATE_DIR,
  diagnose,
  diagnoseCall,
  diagnoseInfoOnStdout,
  LOG_LEVELS,
  type LogFormat,
  type LogLevel,
  logs,
  parseFlags,
  setLogging,
  setting,
  UsageError,
  wholeSetting,
} from "./_command.ts";

const MIB = 1024 * 1024;
const PLUGIN_NAME_REGEXP = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

const HELP = `Usage: berth serve [options]

Serves the Docker plugin API (VolumeDriver, NetworkDriver, IpamDriver) on a unix socket. Every
change is written to an append-only log in the state directory before it is acknowledged; on
start the log is replayed and checked against the host, so volumes and their mounts, networks
(a Linux bridge each), endpoints (a veth pair each), pools and addresses survive a crash or
kill -9.

Options:
  --name NAME        plugin name: docker volume|network create -d NAME      [env BERTH_NAME]
                     (default: berth); the socket is /run/docker/plugins/NAME.sock
  --socket PATH      listen on PATH instead                                 [env BERTH_SOCKET]
  --state-dir DIR    where the log lives, and the volumes unless            [env BERTH_STATE_DIR]
                     --volumes-dir says (default: ${DEFAULT_STATE_DIR})
  --volumes-dir DIR  where volume data lives: DIR/NAME/_data is what        [env BERTH_VOLUMES_DIR]
                     Mount answers (default: STATE-DIR/volumes). As a managed plugin it is the
                     propagatedMount, so that dockerd finds the data on the host side
  --admin ADDR       the inspector page, JSON API, /metrics and /healthz     [env BERTH_ADMIN]
                     (default: the unix socket /run/berth/NAME.sock, mode 0600); or a loopback
                     127.0.0.1:PORT or [::1]:PORT (0: any free port); "off" for none. Other
                     addresses are refused: the admin API shows every actor and its history
  --pool-range CIDR  where IPAM picks a pool when none is asked for      [env BERTH_POOL_RANGE]
                     (default: ${DEFAULT_POOL_RANGE})
  --pool-size N      prefix length of such pools (default: ${DEFAULT_POOL_PREFIX})            [env BERTH_POOL_SIZE]
  --reconcile MODE   at start, what to do with links named bth* that no   [env BERTH_RECONCILE]
                     network or endpoint owns: report (default) or repair (delete them).
                     Links without Berth's prefix are never touched.
  --snapshot-every N take a snapshot after N events             [env BERTH_SNAPSHOT_EVERY]
                     (default: ${DEFAULT_CHECKPOINT_POLICY.everyEvents}), or sooner once the log grew by
  --snapshot-mib M   M MiB (default: ${
  DEFAULT_CHECKPOINT_POLICY.everyBytes / MIB
}), and at every clean stop       [env BERTH_SNAPSHOT_MIB]
                     A delta of the actors that changed, or a full snapshot once as many
                     events as there are live actors came since the last full one. A start
                     reads the newest good snapshot and only the log after it.
  --keep-snapshots K keep the newest K full snapshots, the deltas after  [env BERTH_KEEP_SNAPSHOTS]
                     the oldest of them and the log since (default: ${DEFAULT_CHECKPOINT_POLICY.keep}); older
                     segments and snapshots are deleted. Time travel reaches back to the oldest
                     kept snapshot; a damaged one falls back to the one before it.
                     \`berth compact\` does it on demand.
                     On etcd, each actor's records are put into its snapshot in etcd after N
                     of them (default: ${DEFAULT_SHARED_EVERY}), and a finished actor (a volume removed,
                     a pool released) is deleted from etcd whole; --snapshot-mib and
                     --keep-snapshots do not apply there.
  --max-connections N  plugin socket connections served at once; one more  [env BERTH_MAX_CONNECTIONS]
                     is answered 503 and closed (default: the open-file limit less 256, at most
                     16384: ${defaultLimits().maxConnections} here; Deno raises its soft limit to the hard one)
  --max-body BYTES   a larger request body is refused with 413 unread      [env BERTH_MAX_BODY]
                     (default: ${defaultLimits().maxBodyBytes})
  --request-timeout S  a request must arrive whole within S seconds of its  [env BERTH_REQUEST_TIMEOUT]
                     first byte, else the connection is closed (default: ${
  defaultLimits().requestTimeoutMs / 1000
})
  --idle-timeout S   a kept-alive connection with no request for S seconds  [env BERTH_IDLE_TIMEOUT]
                     is closed (default: ${
  defaultLimits().idleTimeoutMs / 1000
}; dockerd drops its own after 30)
  --log-timeout S    how long a call that changes state waits for the    [env BERTH_LOG_TIMEOUT]
                     disk (default: ${
  DEFAULT_STALL_MS / 1000
} s). Past it (a stalled or frozen disk) the
                     caller gets an error saying the change may still be recorded, and further
                     changes are refused at once until the disk takes the log again. Calls that
                     change nothing (Activate, Capabilities, Get, Path, List) keep answering;
                     List then shows the volumes as they are on disk.
  --log-level LEVEL  error, warn, info (default) or debug               [env BERTH_LOG_LEVEL]
                     At info, one line per plugin call that changes state or is refused: the
                     method, the volume's name or the network's short id, ok / refused / failed
                     with dockerd's words, and the time taken. At debug, reads too.
  --log-format F     text (default: "[INFO] berth: …") or json: one JSON  [env BERTH_LOG_FORMAT]
                     object a line with @level, @message, @timestamp, and for calls method,
                     entity, outcome, ms and error
  --store S          where the log lives: file (default: the state dir)  [env BERTH_STORE]
                     or etcd, shared by the nodes of a cluster: volumes and IPAM are then the
                     cluster's (Capabilities says global). An address is never handed out twice
                     across nodes (each append a transaction on its actor's version); a volume in
                     a local directory is mounted and removed only on the node that made it.
                     Networks are served on etcd with --advertise-address: a network spans
                     the nodes, joined by one VXLAN device per network and node (dockerd 20.10
                     keeps such networks only when run with --cluster-store; see README)
  --etcd-endpoints L http://HOST:PORT,... of the etcd members      [env BERTH_ETCD_ENDPOINTS]
  --cluster NAME     the Berth cluster: its log is /berth/NAME/ in etcd  [env BERTH_CLUSTER]
                     (default: berth)
  --node NAME        this node's name in the log (default: the hostname)   [env BERTH_NODE]
  --etcd-ca FILE     TLS to etcd (https:// endpoints): the CA of the members'  [env BERTH_ETCD_CA]
                     certificates, PEM
  --etcd-cert FILE   this node's client certificate and key, PEM, for      [env BERTH_ETCD_CERT]
  --etcd-key FILE    members that ask for one (--client-cert-auth)         [env BERTH_ETCD_KEY]
  --advertise-address IP  this node's underlay IPv4 address: the other [env BERTH_ADVERTISE_ADDRESS]
                     nodes send its networks' VXLAN traffic there (UDP 4789). Without it, a
                     node on etcd serves no NetworkDriver
  --config FILE      go-plugin volume backends, JSON:                      [env BERTH_CONFIG]
                     {"backends": {"NAME": {"command": ["/path/bin", "arg"], "env": {}}}}
                     Each is launched, health-checked and restarted if it dies; a volume made
                     with -o backend=NAME has its effects done by that backend.
  -h, --help         show this help

Run as a managed Docker plugin (deno task plugin builds one), its config.json sets
BERTH_MANAGED_PLUGIN=1: INFO lines then go to stdout, which dockerd logs at level info, while
warnings and errors stay on stderr (level error). Its socket, state dir (the "state" mount) and
volumes dir (the propagatedMount) come from the same config.json.

A full disk is said in the reply of every call it refuses and once on stderr; Berth writes on
once space returns, without a restart. Nothing is acknowledged that is not on disk.

Under systemd socket activation (LISTEN_PID is Berth's pid, LISTEN_FDS at least 1) it serves the
socket systemd passed as fd 3 instead of making --socket, through node:net (Deno's own listeners
cannot adopt a descriptor), and leaves that socket file to systemd. See berth install-service.

Stops cleanly on SIGINT or SIGTERM: calls in flight finish, the log is synced, the sockets removed.
Needs root: the socket directories, the state directory, and ip link for bridges and veths.
`;

export type ServeConfig = {
  name: string;
  socket: string;
  stateDir: string;
  volumesDir: string;
  admin: AdminAddress | null;
  poolRange: Cidr;
  poolPrefix: number;
  repairOrphans: boolean;
  checkpoints: CheckpointPolicy;
  pluginLimits: HttpLimits;
  /** Go-plugin volume backends from --config, by name. */
  backends: Map<string, BackendSpec>;
  logTimeoutMs: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** BERTH_MANAGED_PLUGIN=1: run by dockerd as a managed (v2) plugin. */
  managed: boolean;
  /** --store etcd: the members, the cluster, this node and TLS; null for the file store. */
  etcd: EtcdSettings | null;
  /** --advertise-address: this node's underlay address (etcd only), or null. */
  advertise: string | null;
};

function cidrSetting(text: string): Cidr {
  try {
    return parseCidr(text);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** The flags of serve, each also read from BERTH_<FLAG> (install-service writes those). */
export const SERVE_FLAGS = {
  name: { type: "string" },
  socket: { type: "string" },
  "state-dir": { type: "string" },
  "volumes-dir": { type: "string" },
  admin: { type: "string" },
  "pool-range": { type: "string" },
  "pool-size": { type: "string" },
  reconcile: { type: "string" },
  "snapshot-every": { type: "string" },
  "snapshot-mib": { type: "string" },
  "keep-snapshots": { type: "string" },
  "max-connections": { type: "string" },
  "max-body": { type: "string" },
  "request-timeout": { type: "string" },
  "idle-timeout": { type: "string" },
  config: { type: "string" },
  "log-timeout": { type: "string" },
  "log-level": { type: "string" },
  "log-format": { type: "string" },
  store: { type: "string" },
  "etcd-endpoints": { type: "string" },
  cluster: { type: "string" },
  node: { type: "string" },
  "etcd-ca": { type: "string" },
  "etcd-cert": { type: "string" },
  "etcd-key": { type: "string" },
  "advertise-address": { type: "string" },
} as const;

export function parseServe(args: string[]): ServeConfig {
  const { values } = parseFlags(args, SERVE_FLAGS);
  const name = setting(values.name, "BERTH_NAME", "berth");
  if (!PLUGIN_NAME_REGEXP.test(name)) {
    throw new UsageError(`plugin name "${name}" must match ${PLUGIN_NAME_REGEXP.source}`);
  }
  const socket = setting(values.socket, "BERTH_SOCKET", `/run/docker/plugins/${name}.sock`);
  const stateDir = setting(values["state-dir"], "BERTH_STATE_DIR", DEFAULT_STATE_DIR);
  const volumesDir = setting(values["volumes-dir"], "BERTH_VOLUMES_DIR", join(stateDir, "volumes"));
  const poolRange = cidrSetting(
    setting(values["pool-range"], "BERTH_POOL_RANGE", DEFAULT_POOL_RANGE),
  );
  const sizeText = setting(values["pool-size"], "BERTH_POOL_SIZE", `${DEFAULT_POOL_PREFIX}`);
  const poolPrefix = Number(sizeText);
  if (!Number.isInteger(poolPrefix) || poolPrefix < poolRange.prefix || poolPrefix > 30) {
    throw new UsageError(
      `pool size "${sizeText}" must be a prefix length from ${poolRange.prefix} to 30`,
    );
  }
  const reconcile = setting(values.reconcile, "BERTH_RECONCILE", "report");
  if (reconcile !== "report" && reconcile !== "repair") {
    throw new UsageError(`reconcile mode "${reconcile}" must be report or repair`);
  }
  const adminText = setting(values.admin, "BERTH_ADMIN", `/run/berth/${name}.sock`);
  let admin: AdminAddress | null = null;
  try {
    admin = adminText === "off" ? null : parseAdminAddress(adminText);
  } catch (error) {
    // Not a usage slip: a refusal on purpose, exit 1 with the reason.
    if (error instanceof AdminAddressError) throw new CommandError(error.message);
    throw error;
  }
  const etcd = etcdSetting(values);
  const defaults = DEFAULT_CHECKPOINT_POLICY;
  // On etcd the count is one actor's records: its snapshot stands for them from then on.
  const everyDefault = etcd ? DEFAULT_SHARED_EVERY : defaults.everyEvents;
  const checkpoints: CheckpointPolicy = {
    everyEvents: wholeSetting(
      setting(values["snapshot-every"], "BERTH_SNAPSHOT_EVERY", `${everyDefault}`),
      "--snapshot-every",
      1,
    ),
    everyBytes: MIB * wholeSetting(
      setting(values["snapshot-mib"], "BERTH_SNAPSHOT_MIB", `${defaults.everyBytes / MIB}`),
      "--snapshot-mib",
      1,
    ),
    keep: wholeSetting(
      setting(values["keep-snapshots"], "BERTH_KEEP_SNAPSHOTS", `${defaults.keep}`),
      "--keep-snapshots",
      1,
    ),
  };
  const limits = defaultLimits();
  const whole = (flag: string, env: string, fallback: number, min: number) =>
    wholeSetting(setting(values[flag as "max-body"], env, `${fallback}`), `--${flag}`, min);
  const pluginLimits: HttpLimits = {
    ...limits,
    maxConnections: whole("max-connections", "BERTH_MAX_CONNECTIONS", limits.maxConnections, 1),
    maxBodyBytes: whole("max-body", "BERTH_MAX_BODY", limits.maxBodyBytes, 1024),
    requestTimeoutMs: 1000 *
      whole("request-timeout", "BERTH_REQUEST_TIMEOUT", limits.requestTimeoutMs / 1000, 1),
    idleTimeoutMs: 1000 *
      whole("idle-timeout", "BERTH_IDLE_TIMEOUT", limits.idleTimeoutMs / 1000, 1),
  };
  const logTimeoutMs = 1000 * wholeSetting(
    setting(values["log-timeout"], "BERTH_LOG_TIMEOUT", `${DEFAULT_STALL_MS / 1000}`),
    "--log-timeout",
    1,
  );
  const logLevel = setting(values["log-level"], "BERTH_LOG_LEVEL", "info");
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new UsageError(`log level "${logLevel}" must be one of ${LOG_LEVELS.join(", ")}`);
  }
  const logFormat = setting(values["log-format"], "BERTH_LOG_FORMAT", "text");
  if (logFormat !== "text" && logFormat !== "json") {
    throw new UsageError(`log format "${logFormat}" must be text or json`);
  }
  const advertise = advertiseSetting(values["advertise-address"], etcd !== null);
  const configFile = values.config ?? Deno.env.get("BERTH_CONFIG");
  let backends = new Map<string, BackendSpec>();
  try {
    if (configFile !== undefined) backends = readBackendsConfig(configFile);
  } catch (error) {
    if (error instanceof BackendsConfigError) throw new CommandError(error.message);
    throw error;
  }
  return {
    name,
    socket,
    checkpoints,
    pluginLimits,
    backends,
    logTimeoutMs,
    logLevel: logLevel as LogLevel,
    logFormat,
    managed: Deno.env.get("BERTH_MANAGED_PLUGIN") === "1",
    etcd,
    advertise,
    stateDir,
    volumesDir,
    admin,
    poolRange,
    poolPrefix,
    repairOrphans: reconcile === "repair",
  };
}

async function serve(config: ServeConfig): Promise<number> {
  if (config.managed) diagnoseInfoOnStdout();
  const missing = missingPrivileges();
  if (missing) throw new CommandError(missing);
  // Listen for stop signals before anything else: a SIGTERM that arrives while the log replays
  // must still end in a clean stop, not in Deno's default exit with the lock and socket half set.
  // A signal's name, or a reason Berth cannot go on (it then exits 1).
  const stop = Promise.withResolvers<string | { fatal: string }>();
  const signals = ["SIGINT", "SIGTERM"] as const;
  const handlers = signals.map((signal) => {
    const handler = () => stop.resolve(signal);
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  setLogging({ level: config.logLevel, format: config.logFormat });
  diagnose(
    "INFO",
    config.etcd
      ? `starting: reading cluster "${config.etcd.cluster}" from etcd`
      : `starting: replaying the log in ${config.stateDir}`,
  );
  const made = firstMissing(config.stateDir);
  const inherited = inheritedSocketFd();
  // Taken: nothing Berth starts (a backend) may read it as its own (sd_listen_fds's unset).
  for (const name of ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]) Deno.env.delete(name);
  let started = false;
  try {
    const berth = await startBerth({
      socket: config.socket,
      ...(inherited === null ? {} : { inheritedSocketFd: inherited }),
      managed: config.managed,
      ...(config.etcd ? { etcd: config.etcd } : {}),
      ...(config.advertise === null ? {} : { advertise: config.advertise }),
      stateDir: config.stateDir,
      volumesDir: config.volumesDir,
      ...(config.admin ? { admin: config.admin } : {}),
      poolRange: config.poolRange,
      repairOrphans: config.repairOrphans,
      poolPrefix: config.poolPrefix,
      checkpoints: config.checkpoints,
      pluginLimits: config.pluginLimits,
      backends: config.backends,
      logTimeoutMs: config.logTimeoutMs,
      warn: (message) => diagnose("WARN", message),
      report: (message) => diagnose("ERROR", message),
      info: (message) => diagnose("INFO", message),
      onAdmin: (admin) => diagnose("INFO", `admin on ${describeAdminAddress(admin.address)}`),
      onCall: logCall,
      onFatal: (message) => stop.resolve({ fatal: message }),
    });
    started = true;
    diagnose(
      "INFO",
      `serving ${
        inherited === null ? config.socket : `the socket systemd passed (fd ${inherited})`
      } (state ${config.stateDir}, ` +
        (berth.replayed.actorSnapshots === undefined
          ? `${berth.store.lastSeq} events: ` +
            (berth.replayed.snapshotSeq > 0 ? `snapshot at ${berth.replayed.snapshotSeq} + ` : "")
          : `etcd at revision ${berth.store.lastSeq}: ` +
            `${berth.replayed.actorSnapshots} actor snapshots + `) +
        `${berth.replayed.records} replayed; ` +
        (["volume", "network", "endpoint", "pool"] as const)
          .map((kind) => `${berth.engine.list(kind).length} ${kind}s`).join(", ") +
        ")",
    );
    const why = await stop.promise;
    if (typeof why !== "string") {
      diagnose("ERROR", `${why.fatal}; stopping (a restart reads the log afresh)`);
    } else diagnose("INFO", `${why}: finishing calls in flight`);
    await berth.stop();
    diagnose("INFO", `stopped; log synced at event ${berth.store.lastSeq}`);
    return typeof why === "string" ? 0 : 1;
  } catch (error) {
    const known = error instanceof StateDirLockedError || error instanceof LogDamagedError ||
      error instanceof SocketInUseError || error instanceof HistoryCompactedError ||
      error instanceof SymlinkRefusedError || error instanceof StoreUnavailableError ||
      error instanceof SharedLogUnreadableError;
    if (error instanceof LogDamagedError) {
      throw new CommandError(
        `${error.message} (berth verify checks the whole log; berth repair --truncate-at ` +
          `OFFSET cuts a damaged end off it)`,
      );
    }
    if (known) throw new CommandError(error.message);
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new CommandError(`${error.message}; ${NEEDS_ROOT}`);
    }
    throw error;
  } finally {
    for (const [name, handler] of handlers) Deno.removeSignalListener(name, handler);
    // A refused start leaves no state directory behind that it made itself.
    if (!started && made !== null) await Deno.remove(made, { recursive: true }).catch(() => {});
  }
}

/** The topmost directory of `path` that does not exist yet (made by this start), or null. */
export function firstMissing(path: string): string | null {
  let missing: string | null = null;
  for (let dir = resolve(path); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      Deno.lstatSync(dir);
      return missing;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) return missing;
      missing = dir;
    }
  }
  return missing;
}

/** The call log: one line per answered call, as loud as call_log.ts says. */
export function logCall({ method, body, error, seconds }: AnsweredCall) {
  if (!logs(callLevel(method, error))) return;
  const line = callLine(method, body, error, seconds);
  diagnoseCall(line.level, line.message, line.fields);
}

export const serveCommand: Command = {
  name: "serve",
  summary: "serve the Docker plugin socket and the admin endpoint (the default)",
  help: HELP,
  run: (args) => serve(parseServe(args)),
};
