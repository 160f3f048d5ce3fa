// The log in etcd, shared by the Berth nodes of one cluster: a SharedEventStore over the etcd
// client. Each record is one transaction that puts it as its actor's next event only if the
// actor's head is still at the revision the engine decided on; a record's sequence number is the
// etcd revision that wrote it, so every node sees one order. A watch brings the other nodes'
// records and the actors dropped. An actor's snapshot stands for its compacted records.
//
// A record carries the node that appended it and an id of its append. The watch also brings this
// node's own records: those it was told of are skipped; one whose append failed for want of an
// answer (it may have committed all the same) is applied like another node's when it shows up.
import {
  AppendConflictError as EtcdConflict,
  SharedLogUnreadableError,
  StoreUnavailableError,
} from "./etcd_errors.ts";
import { etcdKeys } from "./_etcd_keys.ts";
import {
  createEtcdClient,
  type EtcdWatch,
  type LogChange,
  type StoredEvent,
} from "./etcd_client.ts";
import {
  type ActorSnapshot,
  AppendConflictError,
  AppendFailedError,
  type LogRecord,
  type NewRecord,
  type SharedEventStore,
} from "./store.ts";

export type EtcdStoreOptions = {
  /** `host:port` of the etcd members. */
  endpoints: string[];
  /** The Berth cluster: its records live under /berth/<cluster>/. */
  cluster: string;
  /** This node's name, carried on each record it appends. */
  node: string;
  /** Bound on every etcd call (default 5000 ms): past it a call fails with "store unavailable". */
  timeoutMs?: number;
  /** TLS to etcd (PEM): the CA of the members' certificates, and this node's certificate. */
  tls?: { ca: string; cert?: string; key?: string };
  /** Told when the watch loses or regains etcd. */
  warn?: (message: string) => void;
  /**
   * Told when the watch has ended for good (its resume point compacted away in etcd): this node
   * no longer hears the others, and must stop rather than answer from a state that stays behind.
   */
  onLost?: (reason: string) => void;
};

/** A record as it lies in etcd: the log record's fields, its node and its append's id. */
type Stored = NewRecord & { node: string; id: string };

/** A snapshot as it lies in etcd: the actor right after its record `seq`, taken at `at`. */
type StoredActor = ActorSnapshot & { seq: number; at: number; node: string };

export type EtcdEventStore = SharedEventStore & {
  /** The etcd revision up to which this node has seen the cluster's log. */
  readonly revision: number;
};

/** Reads the cluster's whole log from etcd, then watches it; the store is then ready. */
export async function openEtcdStore(options: EtcdStoreOptions): Promise<EtcdEventStore> {
  const { node } = options;
  const warn = options.warn ?? (() => {});
  const client = createEtcdClient({
    endpoints: options.endpoints,
    cluster: options.cluster,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.tls === undefined ? {} : { tls: options.tls }),
  });
  const decode = (event: StoredEvent): { record: LogRecord; from: string; id: string } => {
    const parsed: unknown = JSON.parse(event.value);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new Error("not a JSON object");
    }
    const { node: from, id, ...entry } = parsed as Stored;
    // The key says whose record it is: its version counts there, whatever the value claims.
    if (entry.actor !== event.actor) throw new Error(`it names actor ${String(entry.actor)}`);
    return { record: { seq: event.revision, ...entry }, from, id };
  };
  let atOpen: LogRecord[];
  let revision: number;
  const openSnapshots: ActorSnapshot[] = [];
  const openVersions = new Map<string, number>();
  const backlogs = new Map<string, number>();
  const saw = (actor: string, seq: number) =>
    openVersions.set(actor, Math.max(openVersions.get(actor) ?? 0, seq));
  try {
    revision = await client.currentRevision();
    if (await client.earlierLayoutKeys() > 0) {
      throw new SharedLogUnreadableError(
        `etcd holds cluster "${options.cluster}" in the layout of an earlier Berth ` +
          `(/berth/${options.cluster}/events/), which this one does not read: use another ` +
          `--cluster, or delete it with etcdctl del --prefix /berth/${options.cluster}/events/ ` +
          `(and heads/)`,
      );
    }
    for await (const stored of client.readSnapshots(revision)) {
      const { seq, at: _at, node: _node, ...snapshot } = JSON.parse(stored.value) as StoredActor;
      if (snapshot.id !== stored.actor) {
        throw new SharedLogUnreadableError(
          `the snapshot of ${stored.actor} in etcd holds ${snapshot.id}`,
        );
      }
      openSnapshots.push(snapshot);
      saw(stored.actor, seq);
      backlogs.set(stored.actor, 0);
    }
    const read: LogRecord[] = [];
    for await (const event of client.readAll(revision)) {
      try {
        read.push(decode(event).record);
      } catch (error) {
        throw new SharedLogUnreadableError(
          `the record of ${event.actor} at revision ${event.revision} in etcd is not one ` +
            `Berth wrote (${(error as Error).message}); this Berth will not start on a log it ` +
            `cannot read whole: find it with etcdctl get --prefix ` +
            `${etcdKeys(options.cluster).actorEvents(event.actor)} and delete it if it is not ` +
            `Berth's`,
        );
      }
      saw(event.actor, event.revision);
      backlogs.set(event.actor, (backlogs.get(event.actor) ?? 0) + 1);
    }
    atOpen = read.sort((a, b) => a.seq - b.seq);
  } catch (error) {
    client.close();
    throw error;
  }
  let lastSeq = revision;
  const remoteListeners = new Set<(record: LogRecord, unreadable?: string) => void>();
  const dropListeners = new Set<(actor: string, seq: number) => void>();
  const listeners = new Set<(record: LogRecord) => void>();
  const tell = (record: LogRecord, remote: boolean) => {
    if (remote) { for (const listener of remoteListeners) listener(record); }
    for (const listener of listeners) listener(record);
  };
  // This node's appends by id: in flight (the watch may show them first), or failed unanswered.
  const inFlight = new Map<string, LogRecord | null>();
  const unanswered = new Set<string>();
  let appends = 0;
  const prefix = `${node}-${crypto.randomUUID().slice(0, 8)}-`;
  const pending = new Set<Promise<unknown>>();

  // A record in etcd Berth cannot read, until the next change says whether its append moved the
  // actor's head (then it counts towards the actor's version, as an ignored record) or not.
  let unreadable: { record: LogRecord; why: string } | null = null;
  const onChange = (change: LogChange) => {
    if (unreadable) {
      const { record, why } = unreadable;
      unreadable = null;
      const counted = change.type === "head" && change.actor === record.actor &&
        change.revision === record.seq;
      if (counted) {
        for (const listener of remoteListeners) listener(record, why);
      } else warn(`Ignored ${record.actor} event at ${record.seq} in etcd: ${why}`);
    }
    if (change.type === "head") return;
    if (change.type === "dropped") {
      lastSeq = Math.max(lastSeq, change.revision);
      openVersions.delete(change.actor);
      for (const listener of dropListeners) listener(change.actor, change.revision);
      return;
    }
    const { event } = change;
    let decoded;
    try {
      decoded = decode(event);
    } catch (error) {
      // If its append moved the head, it is the actor's record all the same: the engine counts
      // it towards the actor's version, and says it ignores it, as one that does not fit.
      const why = `not a record Berth wrote: ${(error as Error).message}`;
      const record = { seq: event.revision, at: 0, actor: event.actor, type: "", v: 0, data: {} };
      unreadable = { record, why };
      return;
    }
    const { record, from, id } = decoded;
    lastSeq = Math.max(lastSeq, record.seq);
    if (from === node && inFlight.has(id)) {
      inFlight.set(id, record); // its append's answer tells the engine
      return;
    }
    if (from === node && !unanswered.delete(id) && id.startsWith(prefix)) return;
    tell(record, true);
  };
  let watch: EtcdWatch;
  try {
    watch = await client.watchFrom(revision, onChange, (status) => {
      if (status.type === "disconnected") warn(`etcd watch lost its member: ${status.reason}`);
      if (status.type === "failed") {
        const reason = `the etcd watch cannot go on: ${status.reason}`;
        if (options.onLost) options.onLost(reason);
        else warn(`${reason}; restart Berth`);
      }
    });
  } catch (error) {
    client.close();
    throw error;
  }

  function appendAt(entry: NewRecord, version: number): Promise<LogRecord> {
    const id = `${prefix}${++appends}`;
    inFlight.set(id, null);
    const stored: Stored = { ...entry, node, id };
    const done = client.appendIfHead(entry.actor, version, [JSON.stringify(stored)]).then(
      ({ revision: seq }) => {
        inFlight.delete(id);
        lastSeq = Math.max(lastSeq, seq);
        const record: LogRecord = { seq, ...entry };
        tell(record, false);
        return record;
      },
      (error) => {
        const seen = inFlight.get(id);
        inFlight.delete(id);
        if (error instanceof EtcdConflict) {
          throw new AppendConflictError(entry.actor, error.current, version);
        }
        if (error instanceof StoreUnavailableError) {
          // It may yet have committed: if the watch shows it, it is applied as it comes.
          if (seen) tell(seen, true);
          else unanswered.add(id);
          throw new AppendFailedError(error.message);
        }
        throw error;
      },
    );
    pending.add(done);
    done.finally(() => pending.delete(done)).catch(() => {});
    return done;
  }

  return {
    node,
    get revision() {
      return lastSeq;
    },
    get lastSeq() {
      return lastSeq;
    },
    get firstSeq() {
      return atOpen[0]?.seq ?? lastSeq + 1;
    },
    *records(after = 0) {
      for (const record of atOpen) if (record.seq > after) yield record;
    },
    appendAt,
    append(entry) {
      return appendAt(entry, openVersions.get(entry.actor) ?? 0);
    },
    openVersion: (actor) => openVersions.get(actor) ?? 0,
    openSnapshots: () => openSnapshots,
    openBacklogs: () => backlogs.entries(),
    compact(actor, version, snapshot) {
      const value = snapshot === null
        ? null
        : JSON.stringify({ ...snapshot, seq: version, at: Date.now(), node } satisfies StoredActor);
      const done = client.compactActor(actor, version, value);
      pending.add(done);
      done.finally(() => pending.delete(done)).catch(() => {});
      return done;
    },
    onRemote(listener) {
      remoteListeners.add(listener);
      return () => remoteListeners.delete(listener);
    },
    onDropped(listener) {
      dropListeners.add(listener);
      return () => dropListeners.delete(listener);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async flush() {
      await Promise.allSettled([...pending]);
    },
    async close() {
      await Promise.allSettled([...pending]);
      await watch.stop();
      client.close();
    },
  };
}
