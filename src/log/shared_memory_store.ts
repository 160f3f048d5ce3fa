// A log several engines share in memory, one SharedEventStore per node: the semantics an etcd
// log has (appends conditional on the actor's last record, other nodes' records and drops
// delivered later and in order, compaction into per-actor snapshots), without etcd, for engine
// tests of several nodes.
import {
  type ActorSnapshot,
  AppendConflictError,
  type LogRecord,
  type NewRecord,
  type SharedEventStore,
} from "./store.ts";

export type SharedMemoryLog = {
  /** Every record still held (compacted ones are gone), in the order the log took them. */
  all: LogRecord[];
  /** The actors' snapshots, by actor id. */
  snapshots: Map<string, ActorSnapshot & { seq: number }>;
  /** The store of node `name`; the snapshots and records before it joined are its replay. */
  node(name: string): SharedEventStore;
};

type Change = { record: LogRecord } | { dropped: string; seq: number };

export function createSharedMemoryLog(): SharedMemoryLog {
  let all: LogRecord[] = [];
  let seq = 0;
  // Each actor's version: the sequence number of its last record, as compare-and-set checks it.
  const heads = new Map<string, number>();
  const snapshots = new Map<string, ActorSnapshot & { seq: number }>();
  const nodes = new Set<(change: Change, from: string) => void>();
  const log: SharedMemoryLog = {
    get all() {
      return all;
    },
    snapshots,
    node(name) {
      const listeners = new Set<(record: LogRecord) => void>();
      const dropListeners = new Set<(actor: string, seq: number) => void>();
      const atOpen = [...all];
      const openSnapshots = [...snapshots.values()].map(({ seq: _, ...snapshot }) => snapshot);
      const openVersions = new Map(heads);
      const backlogs = new Map<string, number>([...snapshots.keys()].map((id) => [id, 0]));
      for (const record of atOpen) {
        backlogs.set(record.actor, (backlogs.get(record.actor) ?? 0) + 1);
      }
      // Later and in order, as a network would: never inside the appender's own call.
      const deliver = (change: Change, from: string) => {
        if ("record" in change && from === name) return;
        queueMicrotask(() => {
          if ("record" in change) {
            for (const listener of listeners) listener(change.record);
          } else {
            openVersions.delete(change.dropped);
            for (const listener of dropListeners) listener(change.dropped, change.seq);
          }
        });
      };
      nodes.add(deliver);
      const appendAt = (entry: NewRecord, version: number) => {
        const head = heads.get(entry.actor) ?? 0;
        if (head !== version) {
          return Promise.reject(new AppendConflictError(entry.actor, head, version));
        }
        const record: LogRecord = { seq: ++seq, ...entry };
        all.push(record);
        heads.set(entry.actor, record.seq);
        for (const other of nodes) other({ record }, name);
        return Promise.resolve(record);
      };
      return {
        node: name,
        get lastSeq() {
          return seq;
        },
        get firstSeq() {
          return all[0]?.seq ?? seq + 1;
        },
        *records(after = 0) {
          yield* atOpen.filter((record) => record.seq > after);
        },
        appendAt,
        append(entry: NewRecord) {
          return appendAt(entry, heads.get(entry.actor) ?? 0);
        },
        openVersion: (actor) => openVersions.get(actor) ?? 0,
        openSnapshots: () => openSnapshots,
        openBacklogs: () => backlogs.entries(),
        compact(actor, version, snapshot) {
          if (version < 1 || heads.get(actor) !== version) return Promise.resolve(false);
          if ((snapshots.get(actor)?.seq ?? 0) >= version && snapshot !== null) {
            return Promise.resolve(false);
          }
          all = all.filter((record) => record.actor !== actor);
          if (snapshot === null) {
            snapshots.delete(actor);
            heads.delete(actor);
            const dropped = { dropped: actor, seq: ++seq };
            for (const each of nodes) each(dropped, name);
          } else {
            snapshots.set(actor, { ...snapshot, seq: version });
          }
          return Promise.resolve(true);
        },
        flush: () => Promise.resolve(),
        subscribe: () => () => {},
        onRemote(listener) {
          listeners.add(listener);
          return () => listeners.delete(listener);
        },
        onDropped(listener) {
          dropListeners.add(listener);
          return () => dropListeners.delete(listener);
        },
        close() {
          nodes.delete(deliver);
          return Promise.resolve();
        },
      };
    },
  };
  return log;
}
