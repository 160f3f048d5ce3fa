// Compaction on demand, with Berth stopped: the state dir's newest snapshot brought up to the end
// of the log, then the snapshots and segments beyond the retention removed. The same steps a
// running Berth takes by itself every so many events (checkpoint.ts).
import { join } from "node:path";
import { type Pruned, pruneLog } from "../log/compaction.ts";
import { openFileStore } from "../log/file_store.ts";
import { lockStateDir } from "../log/lock.ts";
import { replayInSlices } from "./replay.ts";
import { loadReplayBase, saveSnapshot } from "./snapshots.ts";

export type Compacted = {
  /** The snapshot now newest: the sequence number it covers, its actors and size. */
  seq: number;
  actors: number;
  /** Null when the newest snapshot already covered the whole log. */
  written: { path: string; bytes: number } | null;
  pruned: Pruned;
  /** Bytes of the segments removed. */
  freedBytes: number;
};

/** Takes the lock (a running Berth holds it: StateDirLockedError), snapshots, prunes. */
export async function compactStateDir(
  stateDir: string,
  options: { keep: number; warn: (message: string) => void; clock?: () => number },
): Promise<Compacted> {
  const dir = join(stateDir, "log");
  using _lock = await lockStateDir(stateDir);
  const store = await openFileStore({ dir, warn: options.warn });
  try {
    const base = await loadReplayBase(dir, store, options.warn);
    const actors = await replayInSlices(store.records(base.seq), options.warn, base.actors);
    const written = store.lastSeq > base.seq
      ? await saveSnapshot(dir, store.lastSeq, [...actors], (options.clock ?? Date.now)())
      : null;
    const sizes = new Map<string, number>();
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile) sizes.set(entry.name, (await Deno.stat(join(dir, entry.name))).size);
    }
    const pruned = await pruneLog(dir, { keep: options.keep });
    let freedBytes = 0;
    for (const path of pruned.segments) freedBytes += sizes.get(path.slice(dir.length + 1)) ?? 0;
    return { seq: store.lastSeq, actors: actors.size, written, pruned, freedBytes };
  } finally {
    await store.close();
  }
}
