// An in-memory event store for engine tests: same contract as the file store, no durability.
import type { EventStore, LogRecord, NewRecord } from "./store.ts";

/** A store holding `initial` records; `records` exposes everything appended, for assertions. */
export function createMemoryStore(initial: LogRecord[] = []): EventStore & { all: LogRecord[] } {
  const all = [...initial];
  const listeners = new Set<(record: LogRecord) => void>();
  return {
    all,
    get lastSeq() {
      return all.at(-1)?.seq ?? 0;
    },
    get firstSeq() {
      return all[0]?.seq ?? 1;
    },
    *records(after = 0) {
      yield* all.filter((record) => record.seq > after);
    },
    flush() {
      return Promise.resolve();
    },
    append(entry: NewRecord) {
      const record: LogRecord = { seq: (all.at(-1)?.seq ?? 0) + 1, ...entry };
      all.push(record);
      for (const listener of listeners) listener(record);
      return Promise.resolve(record);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      return Promise.resolve();
    },
  };
}
