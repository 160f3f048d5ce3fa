// Compaction: keeps the newest `keep` full snapshots and every delta after the oldest of them (a
// delta needs the snapshots it builds on), removes older snapshots, and the log segments that the
// oldest kept full snapshot makes unneeded (every record in them is at or before it). The history
// since then stays, for time travel and for falling back to an older snapshot when the newest is
// damaged. Knows nothing of the engine.
import { join } from "node:path";
import { listSegments } from "./reader.ts";
import { isTemporarySnapshot, listSnapshots } from "./snapshot_file.ts";

/** What compaction removed, by file name. */
export type Pruned = { snapshots: string[]; segments: string[] };

export type PruneOptions = {
  keep: number;
  /** Deletes one file (tests stand in a crash here); Deno.remove by default. */
  remove?: (path: string) => Promise<void>;
};

export async function pruneLog(dir: string, options: PruneOptions): Promise<Pruned> {
  const keep = Math.max(1, options.keep);
  const remove = options.remove ?? ((path: string) => Deno.remove(path));
  const pruned: Pruned = { snapshots: [], segments: [] };
  for await (const entry of Deno.readDir(dir)) {
    // A snapshot a crash left half written is never read; it only takes space.
    if (entry.isFile && isTemporarySnapshot(entry.name)) await Deno.remove(join(dir, entry.name));
  }
  const snapshots = await listSnapshots(dir);
  const fulls = snapshots.filter((snapshot) => !snapshot.delta);
  const oldestKept = fulls.at(-Math.min(keep, fulls.length));
  // Newest first: a delta goes before the snapshot it builds on, so a crash in the middle never
  // leaves a delta whose base is gone.
  const doomed = snapshots.filter((snapshot) => oldestKept && snapshot.seq < oldestKept.seq);
  for (const snapshot of doomed.reverse()) {
    await remove(snapshot.path);
    pruned.snapshots.push(snapshot.path);
  }
  if (oldestKept) {
    const segments = await listSegments(dir);
    // The last segment is never removed: it is where the log goes on.
    for (let i = 0; i < segments.length - 1; i++) {
      if (segments[i + 1]!.firstSeq - 1 > oldestKept.seq) break;
      await remove(segments[i]!.path);
      pruned.segments.push(segments[i]!.path);
    }
  }
  if (pruned.snapshots.length + pruned.segments.length > 0) {
    using handle = await Deno.open(dir, { read: true });
    await handle.sync();
  }
  return pruned;
}
