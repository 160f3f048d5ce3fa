// The wiring of a running Berth: lock, admin endpoint, log, replay, reconcile, plugin socket.
// The one place that chooses implementations (file store, local directory backend, ip plumbing).
import { join, resolve } from "node:path";
import { collectWhenIdle } from "./_collect_garbage.ts";
import type { BackendSpec } from "./backends/goplugin/config.ts";
import { startVolumeBackends } from "./backends/goplugin/volume_backends.ts";
import { createLocalDirBackend } from "./backends/local_dir.ts";
import { type Cidr, DEFAULT_POOL_PREFIX, DEFAULT_POOL_RANGE, parseCidr } from "./backends/ipam.ts";
import { bridgeNames, vethNameChoices } from "./backends/link_names.ts";
import { createIpPlumbing, type NetPlumbing } from "./backends/net_plumbing.ts";
import {
  type CheckpointPolicy,
  createCheckpointer,
  DEFAULT_CHECKPOINT_POLICY,
} from "./engine/checkpoint.ts";
import { NO_EFFECTS } from "./engine/effects.ts";
import { createEngine, type Engine } from "./engine/engine.ts";
import { createIpamService, type IpamService } from "./engine/ipam_service.ts";
import {
  createEndpointEffects,
  createNetworkEffects,
  sharedLinkSurvey,
} from "./engine/network_effects.ts";
import {
  type ClusterNode,
  createNetworkService,
  type NetworkService,
} from "./engine/network_service.ts";
import { createFabric, type Fabric } from "./engine/vxlan_fabric.ts";
import { createVxlanPlumbing } from "./backends/vxlan_plumbing.ts";
import { sweepOrphanLinks } from "./engine/orphans.ts";
import { RecordSchemaError, replayInSlices } from "./engine/replay.ts";
import { createVolumeEffects } from "./engine/volume_effects.ts";
import { loadReplayBase, type ReplayBase, restoreActorSnapshots } from "./engine/snapshots.ts";
import { DEFAULT_SHARED_EVERY, startSharedCompaction } from "./engine/shared_compaction.ts";
import { createVolumeService, type VolumeService } from "./engine/volume_service.ts";
import { LogDamagedError, openFileStore } from "./log/file_store.ts";
import { lockStateDir } from "./log/lock.ts";
import { scanLog } from "./log/reader.ts";
import { type EventStore, isShared } from "./log/store.ts";
import type { VolumeContext } from "../machines/volume_machine.ts";
import { BACKEND_OPTION } from "./backends/goplugin/router.ts";
import { SharedLogUnreadableError, StoreUnavailableError } from "./log/etcd_errors.ts";
import type { Checkpointer } from "./engine/checkpoint.ts";
import type { AdminAddress } from "./transport/admin/address.ts";
import { createMetrics } from "./transport/admin/metrics.ts";
import { type AdminServer, serveAdmin } from "./transport/admin/server.ts";
import { ipamRoutes } from "./transport/docker/ipam.ts";
import { networkRoutes } from "./transport/docker/network.ts";
import type { HttpLimits } from "./transport/_http1.ts";
import type { AnsweredCall } from "./transport/docker/routes.ts";
import { servePlugin } from "./transport/docker/server.ts";
import { volumeRoutes } from "./transport/docker/volume.ts";

/** A running Berth: the engine and log behind a listening plugin socket. */
export type RunningBerth = {
  engine: Engine;
  store: EventStore;
  /** The Docker plugin socket, or null when none was asked for (a go-plugin host's Berth). */
  socket: string | null;
  /** The services both transports use (the Docker socket and `berth plugin`'s gRPC). */
  volumes: VolumeService;
  ipam: IpamService;
  networks: NetworkService;
  /** Where the start came from: the snapshot it read (0: none) and how many records after it. */
  /**
   * What the start read: the snapshot file's sequence number (0: none) and the records after it;
   * on a shared log, each actor's snapshot (`actorSnapshots` of them) and its records after it.
   */
  replayed: { snapshotSeq: number; records: number; actorSnapshots?: number };
  /** The admin endpoint, when one was asked for. */
  admin: AdminServer | null;
  /** Finishes calls in flight, syncs and closes the log, removes the sockets, frees the lock. */
  stop(): Promise<void>;
};

export type StartOptions = {
  /** Where the Docker plugin socket listens; null: no Docker socket (`berth plugin` alone). */
  socket: string | null;
  /**
   * Keep the log in etcd, shared with the other nodes of a cluster, instead of the state dir.
   * For now only IPAM is served then: pools and addresses are the cluster's.
   */
  etcd?: {
    endpoints: string[];
    cluster: string;
    node: string;
    tls?: { ca: string; cert?: string; key?: string };
  };
  /**
   * With `etcd`: this node's underlay address. Networks are then served and span the nodes
   * (a VXLAN device per network); without it a node of a cluster serves no NetworkDriver.
   */
  advertise?: string;
  /** Run by dockerd as a managed plugin: its links are tagged apart from a host Berth's. */
  managed?: boolean;
  /** The plugin socket systemd passed (socket activation), served instead of making `socket`. */
  inheritedSocketFd?: number;
  stateDir: string;
  /** Where the local directory backend keeps volumes (default: STATE-DIR/volumes). */
  volumesDir?: string;
  /** Where the inspector, the JSON API and /metrics listen; none when absent. */
  admin?: AdminAddress;
  /** With true, Berth-named links no actor owns are deleted at start, not only reported. */
  repairOrphans?: boolean;
  /** Run `ip` in this network namespace (tests); the host's by default. */
  netns?: string;
  /** The `ip` to run (tests put a wrapper here); `ip` from PATH by default. */
  ip?: string;
  /** Where IPAM picks pools when none is asked for, and their size (default 198.18.0.0/15, /24). */
  poolRange?: Cidr;
  poolPrefix?: number;
  /** Start a new log segment past this size (default 64 MiB; tests make it small). */
  segmentBytes?: number;
  /** Go-plugin volume backends by name (`--config`), for volumes made with `-o backend=NAME`. */
  backends?: ReadonlyMap<string, BackendSpec>;
  /** Caps on the plugin socket's connections, sizes and time (defaultLimits() when absent). */
  pluginLimits?: Partial<HttpLimits>;
  /** How long a state change may wait for the disk before its caller is told (default 10 s). */
  logTimeoutMs?: number;
  /** When to take snapshots and how many to keep (DEFAULT_CHECKPOINT_POLICY when absent). */
  checkpoints?: CheckpointPolicy;
  /** Diagnostics: warnings (torn record cut, drift repaired) and internal errors. */
  warn: (message: string) => void;
  report: (message: string) => void;
  /** Facts worth a line at start (which drivers are served and why not). */
  info?: (message: string) => void;
  /** Told once the admin endpoint listens, before the log is read (its real address). */
  onAdmin?: (admin: AdminServer) => void;
  /** Hears every answered call on the Docker plugin socket (the call log). */
  onCall?: (call: AnsweredCall) => void;
  /**
   * Told when Berth can no longer serve truthfully and must stop (on etcd: it no longer hears the
   * other nodes); the caller stops it and exits non-zero. Without it, a warning only.
   */
  onFatal?: (message: string) => void;
};

/** No snapshot file: a log in etcd keeps its snapshots per actor, in etcd (openSnapshots). */
const NO_SNAPSHOT: ReplayBase = { seq: 0, actors: new Map(), file: null, fullSeq: 0, deltas: 0 };

/** Nor does it take any. */
const NO_CHECKPOINTS: Checkpointer = {
  checkpoint: () => Promise.resolve(null),
  stop: () => Promise.resolve(),
};

/**
 * Locks the state dir, opens the admin endpoint (answering "starting"), replays the log,
 * reconciles with the host, then opens the plugin socket and marks itself ready.
 */
export async function startBerth(options: StartOptions): Promise<RunningBerth> {
  const { stateDir, warn } = options;
  const logDir = join(stateDir, "log");
  const lock = await lockStateDir(stateDir);
  const metrics = createMetrics();
  let stopBackends = () => Promise.resolve();
  let admin: AdminServer | null = null;
  // Closed if the start fails after opening it: an etcd client would keep the process alive.
  let opened: EventStore | null = null;
  try {
    if (options.admin) {
      admin = await serveAdmin({
        address: options.admin,
        logDir,
        metrics,
        report: options.report,
      });
      options.onAdmin?.(admin);
    }
    const replayStart = performance.now();
    const fileStore = options.etcd ? null : await openFileStore({
      dir: logDir,
      warn,
      ...(options.segmentBytes === undefined ? {} : { segmentBytes: options.segmentBytes }),
      ...(options.logTimeoutMs === undefined ? {} : { stallMs: options.logTimeoutMs }),
      timings: {
        batch(records, _bytes, seconds) {
          metrics.batchRecords.observe(records);
          metrics.syncSeconds.observe(seconds);
        },
        durable: (seconds) => metrics.appendSeconds.observe(seconds),
      },
    });
    const store: EventStore = fileStore ??
      // Loaded only for a cluster: etcd3 reads its .proto files and costs a start ~100 ms.
      await (await import("./log/etcd_store.ts")).openEtcdStore({
        ...options.etcd!,
        warn,
        ...(options.onFatal ? { onLost: options.onFatal } : {}),
      }).catch(
        (error) => {
          // Already said in etcd's terms ("Store unavailable: cannot read …"): as it is.
          if (error instanceof SharedLogUnreadableError) throw error;
          if (error instanceof StoreUnavailableError) throw error;
          throw new StoreUnavailableError("cannot read the log from etcd", error);
        },
      );
    opened = store;
    const logBytes = () => fileStore?.stats().bytes ?? 0;
    // The newest good snapshot, then only the log after it; on etcd, each actor's snapshot and
    // its records after it.
    const base = fileStore
      ? await loadReplayBase(logDir, fileStore, warn)
      : isShared(store)
      ? { ...NO_SNAPSHOT, actors: await restoreActorSnapshots(store.openSnapshots()) }
      : NO_SNAPSHOT;
    const actorSnapshots = base.actors.size; // replay lays the records over this very map
    const actors = await replayInSlices(store.records(base.seq), warn, base.actors).catch(
      async (error) => {
        throw error instanceof RecordSchemaError ? await located(logDir, error) : error;
      },
    );
    metrics.start.replaySeconds = (performance.now() - replayStart) / 1e3;
    const replayed = isShared(store)
      ? {
        snapshotSeq: 0,
        records: [...store.openBacklogs()].reduce((sum, [, records]) => sum + records, 0),
        actorSnapshots,
      }
      : { snapshotSeq: base.seq, records: store.lastSeq - base.seq };
    metrics.start.snapshotSeq = replayed.snapshotSeq;
    metrics.start.replayedRecords = replayed.records;

    const reconcileStart = performance.now();
    const volumeBackends = await startVolumeBackends(
      createLocalDirBackend(options.volumesDir ?? join(stateDir, "volumes")),
      options.backends ?? new Map(),
      { log: (name, line) => warn(`volume backend "${name}": ${line}`), warn },
    );
    stopBackends = () => volumeBackends.stop();
    // The alias on every link Berth makes: which state dir (so which Berth) it belongs to. A
    // managed plugin's state dir is a path inside its rootfs that a Berth on the host may use too.
    const owner = `berth:${options.managed ? "plugin:" : ""}${resolve(stateDir)}`;
    const plumbing = createIpPlumbing({
      owner,
      ...(options.netns === undefined ? {} : { netns: options.netns }),
      ...(options.ip === undefined ? {} : { ip: options.ip }),
    });
    const links = sharedLinkSurvey(plumbing);
    // On etcd, networks span the nodes only when this node says where it is on the underlay.
    const cluster: ClusterNode | undefined = options.etcd && options.advertise !== undefined
      ? { node: options.etcd.node, advertise: options.advertise }
      : undefined;
    if (options.etcd && cluster === undefined) {
      options.info?.(
        "NetworkDriver not served: on --store etcd networks need --advertise-address " +
          "(this node's underlay address, for VXLAN)",
      );
    }
    let engineForFabric: Engine | null = null;
    const fabric: Fabric | undefined = cluster && createFabric({
      ...cluster,
      plumbing,
      vxlan: createVxlanPlumbing({
        owner,
        ...(options.netns === undefined ? {} : { netns: options.netns }),
        ...(options.ip === undefined ? {} : { ip: options.ip }),
      }),
      endpoints: () => engineForFabric?.list("endpoint").map(([, snapshot]) => snapshot) ?? [],
      warn,
    });
    const effects = {
      volume: createVolumeEffects(volumeBackends.backend, options.etcd?.node),
      pool: NO_EFFECTS,
      network: createNetworkEffects(plumbing, links, fabric),
      endpoint: createEndpointEffects(plumbing, links, fabric),
    };
    const engine = createEngine({ store, effects, warn, actors });
    engineForFabric = engine;
    // Every node hears every endpoint record: the other nodes' ones are forwarding entries here.
    if (fabric) engine.observe((record, snapshot) => fabric.heard(record, snapshot));
    volumeBackends.assignAll(engine.list("volume").map(([, volume]) => volume.context));
    // Volumes other nodes make live in the backend their options name, here too.
    if (options.etcd) {
      engine.observe((record, snapshot) => {
        if (record.type !== "volume.create") return;
        volumeBackends.assignAll([(snapshot as { context: VolumeContext }).context]);
      });
    }
    const shared = isShared(store) ? store : null;
    const compaction = shared && startSharedCompaction({
      engine,
      store: shared,
      everyEvents: options.checkpoints?.everyEvents ?? DEFAULT_SHARED_EVERY,
      live: new Set(actors.keys()),
      warn,
    });
    const checkpointer = compaction
      ? { ...NO_CHECKPOINTS, stop: () => compaction.stop() }
      : !fileStore
      ? NO_CHECKPOINTS
      : createCheckpointer({
        engine,
        store,
        dir: logDir,
        policy: options.checkpoints ?? DEFAULT_CHECKPOINT_POLICY,
        since: base.seq,
        sinceFull: base.fullSeq,
        sinceDeltas: base.deltas,
        replayedTail: replayed.records > 0,
        logBytes,
        // The checkpointer warns only of a snapshot it could not write.
        warn: (line) => {
          metrics.snapshots.failures++;
          warn(line);
        },
        onCheckpoint(done) {
          metrics.snapshots.seconds.get(done.delta ? "delta" : "full")!.observe(done.seconds);
          metrics.snapshots.lastSeq = done.seq;
          metrics.snapshots.lastBytes = done.bytes;
          metrics.snapshots.lastAt = Date.now();
        },
      });
    metrics.snapshots.lastSeq = base.seq;
    for (const { actor, events } of await engine.reconcile()) {
      warn(`reconciled ${actor} with the host: recorded ${events.join(", ")}`);
    }
    await reportOrphans(engine, plumbing, { owner, repair: options.repairOrphans ?? false }, warn);
    if (fabric) {
      const devices = new Set(
        (await plumbing.listLinks("bthv").catch(() => [])).map((link) => link.name),
      );
      await fabric.resume(
        engine.list("network").map(([, snapshot]) => snapshot),
        (name) => devices.has(name),
      );
    }
    metrics.start.reconcileSeconds = (performance.now() - reconcileStart) / 1e3;

    const networks = createNetworkService(engine, {
      bridgeNames,
      vethNameChoices,
      exists: (name) => plumbing.linkExists(name),
    }, cluster);
    const ipam = createIpamService(
      engine,
      options.poolRange ?? parseCidr(DEFAULT_POOL_RANGE),
      options.poolPrefix ?? DEFAULT_POOL_PREFIX,
    );
    // A volume of a go-plugin backend can be used from any node; a local directory only on its own.
    const volumes = createVolumeService(engine, {
      ...(options.etcd ? { node: options.etcd.node } : {}),
      anywhere: (opts) => Object.hasOwn(opts, BACKEND_OPTION),
    });
    const server = options.socket === null ? null : await servePlugin({
      path: options.socket,
      // On etcd, volumes and IPAM are the cluster's, and networks too when this node has an
      // underlay address; without one it serves none rather than bridges the others cannot reach.
      routes: options.etcd
        ? {
          ...volumeRoutes(volumes, "global"),
          ...(cluster ? networkRoutes(networks, "global") : {}),
          ...ipamRoutes(ipam),
        }
        : {
          ...volumeRoutes(volumes),
          ...networkRoutes(networks),
          ...ipamRoutes(ipam),
        },
      report: options.report,
      onCall: (call) => {
        metrics.call(call.method, call.status, call.seconds);
        options.onCall?.(call);
      },
      ...(options.pluginLimits ? { limits: options.pluginLimits } : {}),
      ...(options.inheritedSocketFd === undefined
        ? {}
        : { inheritedFd: options.inheritedSocketFd }),
    });
    if (server) metrics.pluginConnections = server.connections;
    admin?.ready({ engine, lastSeq: store.lastSeq, logBytes });
    // The start counts as a busy spell: what it read and dropped is given back at the first lull
    // (idle with 100,000 volumes: 162 MiB resident instead of 277). Not before the socket opens:
    // that collection took 0.3–0.5 s of the start.
    const stopCollecting = collectWhenIdle(() => store.lastSeq, { busy: true });
    return {
      engine,
      store,
      replayed,
      socket: options.socket,
      volumes,
      ipam,
      networks,
      admin,
      async stop() {
        stopCollecting();
        await server?.shutdown();
        await admin?.shutdown();
        await engine.drain();
        await checkpointer.stop();
        // The next start reads this snapshot and no log at all.
        await checkpointer.checkpoint().catch((error) => {
          warn(`Cannot take a snapshot at stop: ${(error as Error).message}`);
        });
        await store.close();
        await stopBackends();
        lock.release();
      },
    };
  } catch (error) {
    await stopBackends();
    await opened?.close().catch(() => {});
    await admin?.shutdown();
    lock.release();
    throw error;
  }
}

/** The segment and byte offset of the record replay refused, as a LogDamagedError. */
async function located(logDir: string, error: RecordSchemaError): Promise<Error> {
  for await (const { file, offset } of scanLog(logDir, { from: error.seq, to: error.seq })) {
    return new LogDamagedError(file, offset, `sequence ${error.seq}: ${error.reason}`);
  }
  return error;
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
