// The operator's cut: the last segment truncated at a record boundary the operator chose (where
// verify or a refused start named damage), and the snapshots past the new end removed. The caller
// holds the state-dir lock. Imports nothing of the engine.
import { refuseLinkedEntries, refuseSymlink } from "./_no_follow.ts";
import { decodeRecord } from "./record.ts";
import { listSegments } from "./reader.ts";
import { SEGMENT_REGEXP } from "./segments.ts";
import { listSnapshots, SNAPSHOT_REGEXP } from "./snapshot_file.ts";

/** A cut the log cannot take as asked; the message says why, in one line. */
export class RepairRefusedError extends Error {
  override name = "RepairRefusedError";
}

export type Cut = {
  file: string;
  offset: number;
  /** Bytes removed, and how many lines (complete or not) they held. */
  bytes: number;
  lines: number;
  /** The sequence number the first removed line stood for; the log now ends just before it. */
  fromSeq: number;
  /** Snapshots past the new end of the log, removed. */
  snapshots: string[];
};

const NEWLINE = 0x0a;

/**
 * Truncates the last segment of the log in `dir` at byte `offset`, which must start a line; every
 * record before it must read clean (else the cut would leave damage behind and is refused).
 */
export async function truncateLog(dir: string, offset: number): Promise<Cut> {
  // Truncate and remove follow no link: a linked segment or snapshot is refused, not cut.
  await refuseSymlink(dir);
  await refuseLinkedEntries(dir, [SEGMENT_REGEXP, SNAPSHOT_REGEXP]);
  const last = (await listSegments(dir)).at(-1);
  if (!last) throw new RepairRefusedError(`${dir} holds no log segment`);
  const file = last.path;
  const bytes = await Deno.readFile(file);
  if (offset >= bytes.length) {
    throw new RepairRefusedError(
      `byte ${offset} is not inside the last segment ${file} (${bytes.length} bytes); ` +
        `only the last segment can be cut`,
    );
  }
  if (offset > 0 && bytes[offset - 1] !== NEWLINE) {
    throw new RepairRefusedError(`byte ${offset} of ${file} does not start a record`);
  }
  let seq = last.firstSeq;
  for (let at = 0; at < offset; seq++) {
    const result = decodeRecord(bytes, at);
    if (!result.ok || result.record.seq !== seq) {
      throw new RepairRefusedError(
        `${file} is damaged at byte ${at}, before byte ${offset}: cut there instead`,
      );
    }
    at = result.next;
  }
  let lines = 0;
  for (let at = offset; at < bytes.length; lines++) {
    const end = bytes.indexOf(NEWLINE, at);
    at = end === -1 ? bytes.length : end + 1;
  }
  await Deno.truncate(file, offset);
  using handle = await Deno.open(file, { read: true });
  await handle.syncData();
  const snapshots: string[] = [];
  for (const snapshot of await listSnapshots(dir)) {
    if (snapshot.seq < seq) continue;
    await Deno.remove(snapshot.path);
    snapshots.push(snapshot.path);
  }
  if (snapshots.length > 0) {
    using directory = await Deno.open(dir, { read: true });
    await directory.sync();
  }
  return { file, offset, bytes: bytes.length - offset, lines, fromSeq: seq, snapshots };
}
