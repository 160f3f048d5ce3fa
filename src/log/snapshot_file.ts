// Snapshot files: every live actor's state at one sequence number, so that a start reads the
// newest snapshot and only the log after it. Knows nothing of the engine: entries arrive as JSON.
//
// <seq, 20 digits>.snap beside the log segments, every line sealed with its own checksum:
//   {"berth":"snapshot","format":1,"seq":S,"base":0,"at":T,"versions":{…},"actors":N,"crc":…}
//   {"id":"volume/db","state":"ready","context":{…},"crc":…}        N lines, one per actor
//   {"end":S,"actors":N,"crc":…}
// A delta, <seq>.delta, holds only the actors that changed since the snapshot at sequence `base`
// (a full one or another delta); an actor gone since then has `"state":null`.
// Written to a temporary file, fsynced, renamed into place, directory fsynced: a snapshot is
// whole or absent. The count and the end line find a file cut short by the disk.
import { join } from "node:path";
import { openNoFollow, SymlinkRefusedError } from "./_no_follow.ts";
import { openLine, sealLine } from "./_sealed_line.ts";

export const SNAPSHOT_FORMAT = 1;
export const SNAPSHOT_REGEXP = /^(\d{20})\.(snap|delta)$/;
const TEMPORARY_SUFFIX = ".tmp";

export function snapshotName(seq: number, delta = false): string {
  return `${String(seq).padStart(20, "0")}.${delta ? "delta" : "snap"}`;
}

/** What a snapshot says of itself: the record it covers up to, and its machines' versions. */
export type SnapshotHeader = {
  seq: number;
  /** 0 for a full snapshot; for a delta, the sequence number of the snapshot it changes. */
  base: number;
  /** Milliseconds since the epoch, when it was taken. */
  at: number;
  /** Each kind's machine version when it was taken: another version cannot read its contexts. */
  versions: Record<string, number>;
  actors: number;
};

/**
 * One actor as a snapshot keeps it: its state value and its context in JSON form; in a delta, a
 * null state says the actor is gone.
 */
export type SnapshotEntry = { id: string; state: unknown; context: unknown };

export type SnapshotFile = { path: string; seq: number; delta: boolean };

/** A snapshot that cannot be trusted: names the file and the byte offset. */
export class SnapshotDamagedError extends Error {
  override name = "SnapshotDamagedError";
  constructor(readonly file: string, readonly offset: number, readonly reason: string) {
    super(`Snapshot ${file} is damaged at byte ${offset}: ${reason}`);
  }
}

/** The snapshots in `dir`, oldest first. */
export async function listSnapshots(dir: string): Promise<SnapshotFile[]> {
  const found: SnapshotFile[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const match = SNAPSHOT_REGEXP.exec(entry.name);
      if (entry.isSymlink && match) throw new SymlinkRefusedError(join(dir, entry.name));
      if (entry.isFile && match) {
        found.push({
          path: join(dir, entry.name),
          seq: Number(match[1]),
          delta: match[2] === "delta",
        });
      }
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  return found.sort((a, b) => a.seq - b.seq);
}

/** How many bytes go to the file per write, and how many entries between turns of the loop. */
const WRITE_BYTES = 1 << 20;

/**
 * Writes a snapshot of `entries` (exactly `header.actors` of them) into `dir` and makes it
 * durable: temporary file, fsync, rename, directory fsync. Writes in chunks, so a large snapshot
 * lets the event loop run between them. Returns the file and its size.
 */
export async function writeSnapshot(
  dir: string,
  header: Omit<SnapshotHeader, "actors">,
  count: number,
  entries: Iterable<SnapshotEntry>,
): Promise<{ path: string; bytes: number }> {
  const path = join(dir, snapshotName(header.seq, header.base > 0));
  const temporary = path + TEMPORARY_SUFFIX;
  const file = await openNoFollow(temporary, {
    create: true,
    write: true,
    truncate: true,
    mode: 0o600,
  });
  let bytes = 0;
  try {
    let chunk: Uint8Array[] = [];
    let chunkBytes = 0;
    const add = async (line: Uint8Array) => {
      chunk.push(line);
      chunkBytes += line.length;
      if (chunkBytes >= WRITE_BYTES) await flush();
    };
    const flush = async () => {
      const joined = concat(chunk, chunkBytes);
      for (let done = 0; done < joined.length;) done += await file.write(joined.subarray(done));
      bytes += joined.length;
      chunk = [];
      chunkBytes = 0;
    };
    const { seq, base, at, versions } = header;
    const head = {
      berth: "snapshot",
      format: SNAPSHOT_FORMAT,
      seq,
      base,
      at,
      versions,
      actors: count,
    };
    await add(sealLine(jsonBody(head)));
    let written = 0;
    for (const entry of entries) {
      await add(sealLine(jsonBody({ id: entry.id, state: entry.state, context: entry.context })));
      written++;
    }
    if (written !== count) {
      throw new Error(`snapshot expected ${count} actors, was given ${written}`);
    }
    await add(sealLine(jsonBody({ end: seq, actors: count })));
    await flush();
    await file.sync();
  } catch (error) {
    file.close();
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
  file.close();
  await Deno.rename(temporary, path);
  using handle = await Deno.open(dir, { read: true });
  await handle.sync();
  return { path, bytes };
}

/** Reads and checks a whole snapshot: every line's checksum, the count and the end line. */
export async function readSnapshot(
  path: string,
): Promise<{ header: SnapshotHeader; entries: SnapshotEntry[] }> {
  const entries: SnapshotEntry[] = [];
  const header = await scanSnapshot(path, (entry) => void entries.push(entry));
  return { header, entries };
}

/** The header of a snapshot alone, from its first line (to follow a chain before reading it). */
export async function readSnapshotHeader(path: string): Promise<SnapshotHeader> {
  using file = await Deno.open(path, { read: true });
  const bytes = new Uint8Array(HEADER_BYTES);
  let length = 0;
  while (length < bytes.length) {
    const n = await file.read(bytes.subarray(length));
    if (n === null) break;
    length += n;
    if (bytes.subarray(0, length).includes(0x0a)) break;
  }
  const opened = openLine(bytes.subarray(0, length), 0);
  if (!opened.ok) throw new SnapshotDamagedError(path, 0, opened.reason);
  const value = opened.value;
  const header = typeof value === "object" && value !== null && !Array.isArray(value)
    ? headerOf(value as Record<string, unknown>)
    : "line is not an object";
  if (typeof header === "string") throw new SnapshotDamagedError(path, 0, header);
  return header;
}

/** A header line is far shorter than this. */
const HEADER_BYTES = 64 * 1024;

/** How many bytes a scan reads at a time. */
const READ_BYTES = 1 << 20;

/**
 * Reads a snapshot a piece at a time, handing each actor to `onEntry` once its line is checked,
 * so that a large snapshot is never all in memory; resolves with its header once the count and
 * the end line are found whole. Damage anywhere throws, possibly after some entries were handed
 * over: a caller keeps nothing of a snapshot whose scan did not resolve.
 */
export async function scanSnapshot(
  path: string,
  onEntry: (entry: SnapshotEntry) => void | Promise<void>,
): Promise<SnapshotHeader> {
  using file = await Deno.open(path, { read: true });
  const damaged = (offset: number, reason: string) =>
    new SnapshotDamagedError(path, offset, reason);
  const chunk = new Uint8Array(READ_BYTES);
  let carry = new Uint8Array(0);
  let base = 0; // the file offset of carry[0]
  let header: SnapshotHeader | null = null;
  let seen = 0;
  let ended = false;
  const take = async (bytes: Uint8Array, offset: number, lineOffset: number) => {
    if (ended) throw damaged(lineOffset, "bytes after the end line");
    const opened = openLine(bytes, offset);
    if (!opened.ok) throw damaged(lineOffset, opened.reason);
    const value = opened.value;
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw damaged(lineOffset, "line is not an object");
    }
    const fields = value as Record<string, unknown>;
    if (header === null) {
      const parsed = headerOf(fields);
      if (typeof parsed === "string") throw damaged(lineOffset, parsed);
      header = parsed;
      return;
    }
    if (seen === header.actors) {
      if (fields.end !== header.seq || fields.actors !== header.actors) {
        throw damaged(
          lineOffset,
          `the end line does not match the header (${header.actors} actors)`,
        );
      }
      ended = true;
      return;
    }
    if (typeof fields.id !== "string" || !("state" in fields) || !("context" in fields)) {
      throw damaged(lineOffset, `line ${seen + 2} is not an actor`);
    }
    if (fields.state === null && header.base === 0) {
      throw damaged(lineOffset, `line ${seen + 2} removes an actor in a full snapshot`);
    }
    seen++;
    await onEntry({ id: fields.id, state: fields.state, context: fields.context });
  };
  while (true) {
    const n = await file.read(chunk);
    if (n === null) break;
    const bytes = carry.length === 0 ? chunk.subarray(0, n) : join2(carry, chunk.subarray(0, n));
    let offset = 0;
    for (let end = bytes.indexOf(0x0a); end !== -1; end = bytes.indexOf(0x0a, offset)) {
      await take(bytes, offset, base + offset);
      offset = end + 1;
    }
    carry = bytes.slice(offset);
    base += offset;
  }
  if (carry.length > 0) {
    throw damaged(base, ended ? "bytes after the end line" : "record has no end of line");
  }
  if (!ended) throw damaged(base, "the file ends before its end line");
  return header!;
}

function join2(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function headerOf(value: Record<string, unknown>): SnapshotHeader | string {
  if (value.berth !== "snapshot") return "not a Berth snapshot";
  if (value.format !== SNAPSHOT_FORMAT) {
    return `snapshot format ${String(value.format)}; this Berth reads format ${SNAPSHOT_FORMAT}`;
  }
  const { seq, base, at, versions, actors } = value;
  if (!isWhole(seq) || !isWhole(base) || !isWhole(at) || !isWhole(actors)) {
    return "header has a bad shape";
  }
  if (base > 0 && base >= seq) return `a delta's base (${base}) must come before it (${seq})`;
  if (typeof versions !== "object" || versions === null || Array.isArray(versions)) {
    return "header has no machine versions";
  }
  return { seq, base, at, actors, versions: versions as Record<string, number> };
}

function isWhole(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** The JSON text of `value` without its closing brace, as sealLine wants it. */
function jsonBody(value: Record<string, unknown>): string {
  return JSON.stringify(value).slice(0, -1);
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** True for a snapshot being written when a crash came: never renamed, never trusted. */
export function isTemporarySnapshot(name: string): boolean {
  return name.endsWith(`.snap${TEMPORARY_SUFFIX}`) || name.endsWith(`.delta${TEMPORARY_SUFFIX}`);
}
