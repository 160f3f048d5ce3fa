// A log several engines share in memory, one SharedEventStore per node: the semantics an etcd
// log has (appends conditional on the actor's version, other nodes' records delivered later and
// in order), without etcd, for engine tests of several nodes.
import {
  AppendConflictError,
  type LogRecord,
  type NewRecord,
  type SharedEventStore,
} from "./store.ts";

export type SharedMemoryLog = {
  /** Every record, in the order the log took them. */
  all: LogRecord[];
  /** The store of node `name`; the records before it joined are its replay. */
  node(name: string): SharedEventStore;
};

export function createSharedMemoryLog(): SharedMemoryLog {
  const all: LogRecord[] = [];
  const heads = new Map<string, number>();
  const nodes = new Set<(record: LogRecord, from: string) => void>();
  return {
    all,
    node(name) {
      const listeners = new Set<(record: LogRecord) => void>();
      const atOpen = [...all];
      const openVersions = new Map<string, number>();
      for (const record of atOpen) {
        openVersions.set(record.actor, (openVersions.get(record.actor) ?? 0) + 1);
      }
      // Later and in order, as a network would: never inside the appender's own call.
      const deliver = (record: LogRecord, from: string) => {
        if (from === name) return;
        queueMicrotask(() => {
          for (const listener of listeners) listener(record);
        });
      };
      nodes.add(deliver);
      const appendAt = (entry: NewRecord, version: number) => {
        const head = heads.get(entry.actor) ?? 0;
        if (head !== version) return Promise.reject(new AppendConflictError(entry.actor, head));
        const record: LogRecord = { seq: (all.at(-1)?.seq ?? 0) + 1, ...entry };
        all.push(record);
        heads.set(entry.actor, head + 1);
        for (const other of nodes) other(record, name);
        return Promise.resolve(record);
      };
      return {
        node: name,
        get lastSeq() {
          return all.at(-1)?.seq ?? 0;
        },
        get firstSeq() {
          return all[0]?.seq ?? 1;
        },
        *records(after = 0) {
          yield* atOpen.filter((record) => record.seq > after);
        },
        appendAt,
        append(entry: NewRecord) {
          return appendAt(entry, heads.get(entry.actor) ?? 0);
        },
        openVersion: (actor) => openVersions.get(actor) ?? 0,
        flush: () => Promise.resolve(),
        subscribe: () => () => {},
        onRemote(listener) {
          listeners.add(listener);
          return () => listeners.delete(listener);
        },
        close() {
          nodes.delete(deliver);
          return Promise.resolve();
        },
      };
    },
  };
}
