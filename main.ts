// Berth's command line: parse flags, wire the pieces, run one subcommand.
// The only place that chooses implementations (file store, local directory backend, socket).
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { createLocalDirBackend } from "./src/backends/local_dir.ts";
import { createEngine, type Engine } from "./src/engine/engine.ts";
import { createVolumeEffects } from "./src/engine/volume_effects.ts";
import { NO_EFFECTS } from "./src/engine/effects.ts";
import { createIpamService } from "./src/engine/ipam_service.ts";
import {
  type Cidr,
  DEFAULT_POOL_PREFIX,
  DEFAULT_POOL_RANGE,
  parseCidr,
} from "./src/backends/ipam.ts";
import { ipamRoutes } from "./src/transport/docker/ipam.ts";
import { networkRoutes } from "./src/transport/docker/network.ts";
import {
  bridgeName,
  createIpPlumbing,
  type NetPlumbing,
  vethNames,
} from "./src/backends/net_plumbing.ts";
import { createEndpointEffects, createNetworkEffects } from "./src/engine/network_effects.ts";
import { createNetworkService } from "./src/engine/network_service.ts";
import { sweepOrphanLinks } from "./src/engine/orphans.ts";
import { LogDamagedError, openFileStore } from "./src/log/file_store.ts";
import { lockStateDir, StateDirLockedError } from "./src/log/lock.ts";
import type { EventStore } from "./src/log/store.ts";
import { servePlugin, SocketInUseError } from "./src/transport/docker/server.ts";
import { volumeRoutes } from "./src/transport/docker/volume.ts";

const PLUGIN_NAME_REGEXP = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

const MAIN_HELP =
  `Berth — a Docker volume, network and IPAM plugin engine whose state survives every crash.

Usage:
  berth [serve] [options]     serve the Docker plugin socket (the default command)
  berth help [command]        show help

Run "berth serve --help" for the options of serve.
`;

const SERVE_HELP = `Usage: berth serve [options]

Serves the Docker plugin API (VolumeDriver, NetworkDriver, IpamDriver) on a unix socket. Every
change is written to an append-only log in the state directory before it is acknowledged; on
start the log is replayed and checked against the host, so volumes and their mounts, networks
(a Linux bridge each), endpoints (a veth pair each), pools and addresses survive a crash or
kill -9.

Options:
  --name NAME        plugin name: docker volume|network create -d NAME      [env BERTH_NAME]
                     (default: berth); the socket is /run/docker/plugins/NAME.sock
  --socket PATH      listen on PATH instead                                 [env BERTH_SOCKET]
  --state-dir DIR    where the log and the volumes live                     [env BERTH_STATE_DIR]
                     (default: /var/lib/berth; volumes in DIR/volumes/NAME/_data)
  --pool-range CIDR  where IPAM picks a pool when none is asked for      [env BERTH_POOL_RANGE]
                     (default: 198.18.0.0/15)
  --pool-size N      prefix length of such pools (default: 24)            [env BERTH_POOL_SIZE]
  --reconcile MODE   at start, what to do with links named bth* that no   [env BERTH_RECONCILE]
                     network or endpoint owns: report (default) or repair (delete them).
                     Links without Berth's prefix are never touched.
  -h, --help         show this help

Stops cleanly on SIGINT or SIGTERM: calls in flight finish, the log is synced, the socket removed.
Needs root: the socket directory, the state directory, and ip link for bridges and veths.
`;

type ServeConfig = {
  name: string;
  socket: string;
  stateDir: string;
  poolRange: Cidr;
  poolPrefix: number;
  repairOrphans: boolean;
};

function diagnose(level: "INFO" | "WARN" | "ERROR", message: string) {
  Deno.stderr.writeSync(new TextEncoder().encode(`[${level}] berth: ${message}\n`));
}

function parseServe(args: string[]): ServeConfig | "help" {
  const { values, positionals } = parseArgs({
    args,
    options: {
      name: { type: "string" },
      socket: { type: "string" },
      "state-dir": { type: "string" },
      "pool-range": { type: "string" },
      "pool-size": { type: "string" },
      reconcile: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) return "help";
  if (positionals.length > 0) throw new Error(`unexpected argument "${positionals[0]}"`);
  const name = values.name ?? Deno.env.get("BERTH_NAME") ?? "berth";
  if (!PLUGIN_NAME_REGEXP.test(name)) {
    throw new Error(`plugin name "${name}" must match ${PLUGIN_NAME_REGEXP.source}`);
  }
  const socket = values.socket ?? Deno.env.get("BERTH_SOCKET") ??
    `/run/docker/plugins/${name}.sock`;
  const stateDir = values["state-dir"] ?? Deno.env.get("BERTH_STATE_DIR") ?? "/var/lib/berth";
  const rangeText = values["pool-range"] ?? Deno.env.get("BERTH_POOL_RANGE") ?? DEFAULT_POOL_RANGE;
  const poolRange = parseCidr(rangeText);
  const sizeText = values["pool-size"] ?? Deno.env.get("BERTH_POOL_SIZE") ??
    `${DEFAULT_POOL_PREFIX}`;
  const poolPrefix = Number(sizeText);
  if (!Number.isInteger(poolPrefix) || poolPrefix < poolRange.prefix || poolPrefix > 30) {
    throw new Error(
      `pool size "${sizeText}" must be a prefix length from ${poolRange.prefix} to 30`,
    );
  }
  const reconcile = values.reconcile ?? Deno.env.get("BERTH_RECONCILE") ?? "report";
  if (reconcile !== "report" && reconcile !== "repair") {
    throw new Error(`reconcile mode "${reconcile}" must be report or repair`);
  }
  return { name, socket, stateDir, poolRange, poolPrefix, repairOrphans: reconcile === "repair" };
}

/** A running Berth: the engine and log behind a listening plugin socket. */
export type RunningBerth = {
  engine: Engine;
  store: EventStore;
  socket: string;
  /** Finishes calls in flight, syncs and closes the log, removes the socket, frees the lock. */
  stop(): Promise<void>;
};

export type StartOptions = {
  socket: string;
  stateDir: string;
  /** With true, Berth-named links no actor owns are deleted at start, not only reported. */
  repairOrphans?: boolean;
  /** Run `ip` in this network namespace (tests); the host's by default. */
  netns?: string;
  /** Where IPAM picks pools when none is asked for, and their size (default 198.18.0.0/15, /24). */
  poolRange?: Cidr;
  poolPrefix?: number;
  /** Diagnostics: warnings (torn record cut, drift repaired) and internal errors. */
  warn: (message: string) => void;
  report: (message: string) => void;
};

/** Locks the state dir, replays the log, reconciles with the host, then opens the socket. */
export async function startBerth(options: StartOptions): Promise<RunningBerth> {
  const { stateDir, warn } = options;
  const lock = await lockStateDir(stateDir);
  try {
    const store = await openFileStore({ dir: join(stateDir, "log"), warn });
    const backend = createLocalDirBackend(join(stateDir, "volumes"));
    // The alias on every link Berth makes: which state dir (so which Berth) it belongs to.
    const owner = `berth:${resolve(stateDir)}`;
    const plumbing = createIpPlumbing({
      owner,
      ...(options.netns === undefined ? {} : { netns: options.netns }),
    });
    const effects = {
      volume: createVolumeEffects(backend),
      pool: NO_EFFECTS,
      network: createNetworkEffects(plumbing),
      endpoint: createEndpointEffects(plumbing),
    };
    const engine = createEngine({ store, effects, warn });
    for (const { actor, events } of await engine.reconcile()) {
      warn(`reconciled ${actor} with the host: recorded ${events.join(", ")}`);
    }
    await reportOrphans(engine, plumbing, { owner, repair: options.repairOrphans ?? false }, warn);
    const networks = createNetworkService(engine, {
      bridgeName,
      vethNames,
      exists: (name) => plumbing.linkExists(name),
    });
    const ipam = createIpamService(
      engine,
      options.poolRange ?? parseCidr(DEFAULT_POOL_RANGE),
      options.poolPrefix ?? DEFAULT_POOL_PREFIX,
    );
    const server = await servePlugin({
      path: options.socket,
      routes: { ...volumeRoutes(engine), ...networkRoutes(networks), ...ipamRoutes(ipam) },
      report: options.report,
    });
    return {
      engine,
      store,
      socket: options.socket,
      async stop() {
        await server.shutdown();
        await engine.drain();
        await store.close();
        lock.release();
      },
    };
  } catch (error) {
    lock.release();
    throw error;
  }
}

async function reportOrphans(
  engine: Engine,
  plumbing: NetPlumbing,
  options: { owner: string; repair: boolean },
  warn: (message: string) => void,
) {
  try {
    for (const link of await sweepOrphanLinks(engine, plumbing, options)) {
      warn(
        `${link.kind} ${link.name} has Berth's name but no network or endpoint owns it: ` +
          (link.removed ? "removed" : "left alone (--reconcile=repair removes it)"),
      );
    }
  } catch (error) {
    // Volumes work without iproute2; networks will say what is missing when they are used.
    warn(`Cannot look for stray links: ${(error as Error).message}`);
  }
}

async function serve(config: ServeConfig): Promise<number> {
  // Listen for stop signals before anything else: a SIGTERM that arrives while the log replays
  // must still end in a clean stop, not in Deno's default exit with the lock and socket half set.
  const stop = Promise.withResolvers<string>();
  const signals = ["SIGINT", "SIGTERM"] as const;
  const handlers = signals.map((signal) => {
    const handler = () => stop.resolve(signal);
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  diagnose("INFO", `starting: replaying the log in ${config.stateDir}`);
  try {
    const berth = await startBerth({
      socket: config.socket,
      stateDir: config.stateDir,
      poolRange: config.poolRange,
      repairOrphans: config.repairOrphans,
      poolPrefix: config.poolPrefix,
      warn: (message) => diagnose("WARN", message),
      report: (message) => diagnose("ERROR", message),
    });
    diagnose(
      "INFO",
      `serving ${config.socket} (state ${config.stateDir}, ${berth.store.lastSeq} events, ` +
        (["volume", "network", "endpoint", "pool"] as const)
          .map((kind) => `${berth.engine.list(kind).length} ${kind}s`).join(", ") +
        ")",
    );
    const signal = await stop.promise;
    diagnose("INFO", `${signal}: finishing calls in flight`);
    await berth.stop();
    diagnose("INFO", `stopped; log synced at event ${berth.store.lastSeq}`);
    return 0;
  } finally {
    for (const [name, handler] of handlers) Deno.removeSignalListener(name, handler);
  }
}

async function main(args: string[]): Promise<number> {
  const [first, ...rest] = args;
  if (first === "help" || first === "--help" || first === "-h") {
    const topic = first === "help" ? rest[0] : undefined;
    Deno.stdout.writeSync(new TextEncoder().encode(topic === "serve" ? SERVE_HELP : MAIN_HELP));
    return 0;
  }
  const serveArgs = first === "serve" ? rest : args;
  if (first !== undefined && first !== "serve" && !first.startsWith("-")) {
    diagnose("ERROR", `unknown command "${first}"; run "berth --help"`);
    return 2;
  }
  let config: ServeConfig | "help";
  try {
    config = parseServe(serveArgs);
  } catch (error) {
    diagnose("ERROR", `${(error as Error).message}; run "berth serve --help"`);
    return 2;
  }
  if (config === "help") {
    Deno.stdout.writeSync(new TextEncoder().encode(SERVE_HELP));
    return 0;
  }
  try {
    return await serve(config);
  } catch (error) {
    const known = error instanceof StateDirLockedError || error instanceof LogDamagedError ||
      error instanceof SocketInUseError;
    diagnose("ERROR", known ? (error as Error).message : String((error as Error).stack ?? error));
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
