// Reads the log segments in a directory, read-only and streaming, while Berth runs or not: never
// takes the state-dir lock, never writes or truncates. Imports nothing of the engine.
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { LogDamagedError, SEGMENT_REGEXP } from "./segments.ts";
import { SymlinkRefusedError } from "./_no_follow.ts";
import { decodeRecord, type DecodeResult } from "./record.ts";
import type { LogRecord } from "./store.ts";

export type ReadOptions = {
  /** The first sequence number wanted; earlier lines are skipped without being decoded. */
  from?: number;
  /** The last sequence number wanted; reading stops right after it. */
  to?: number;
  /** Only this actor's records (lines without its JSON-encoded id are not decoded). */
  actor?: string;
  /** Only records of this event type. */
  type?: string;
  /** Told of a torn record at the very end of the log: bytes without a newline, not yielded. */
  onTorn?: (torn: TornRecord) => void;
  /** Told once each segment is read to its end, with how many bytes it held. */
  onSegment?: (segment: Segment, bytes: number) => void;
};

export type FollowOptions = ReadOptions & {
  /** Ends the tail: the generator returns, its file is closed and its timer cleared. */
  signal: AbortSignal;
  /** Called each time the reader has caught up and is about to wait (flush output here). */
  onIdle?: () => void;
  /** How often to look for new bytes or a new segment (default 150 ms). */
  pollMs?: number;
};

/** Bytes at the end of the last segment that do not make a record yet. */
export type TornRecord = { file: string; offset: number; bytes: number };
export type Segment = { path: string; firstSeq: number };
/** A record and where it lies. */
export type LocatedRecord = { record: LogRecord; file: string; offset: number };

/** The directory holds no log (missing); a one-line reason. */
export class LogMissingError extends Error {
  override name = "LogMissingError";
}

/** A LogDamagedError that also says which sequence number was expected there, and why. */
export class RecordDamagedError extends LogDamagedError {
  constructor(file: string, offset: number, readonly seq: number, readonly reason: string) {
    super(file, offset, `${reason} (expected sequence ${seq})`);
  }
}

const CHUNK_BYTES = 1 << 20;
const NEWLINE = 0x0a;
const ENCODER = new TextEncoder();
const SEQ_PREFIX = ENCODER.encode('{"seq":');
const STOP = Symbol("stop");

/** The segments of `dir` in log order; throws LogMissingError when `dir` does not exist. */
export async function listSegments(dir: string): Promise<Segment[]> {
  const segments: Segment[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const match = SEGMENT_REGEXP.exec(entry.name);
      // Skipping a linked segment would be a silent gap; reading it, reading outside the log.
      if (entry.isSymlink && match) throw new SymlinkRefusedError(join(dir, entry.name));
      if (entry.isFile && match) {
        segments.push({ path: join(dir, entry.name), firstSeq: Number(match[1]) });
      }
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new LogMissingError(`${dir} does not exist`);
    throw error;
  }
  return segments.sort((a, b) => a.firstSeq - b.firstSeq);
}

/** Every record of the log in `dir` that passes the filters, in order, one segment at a time. */
export async function* readLog(dir: string, options: ReadOptions = {}): AsyncGenerator<LogRecord> {
  for await (const located of scanLog(dir, options)) yield located.record;
}

/** As readLog, then keeps tailing the log for new records until `signal` aborts. */
export async function* followLog(dir: string, options: FollowOptions): AsyncGenerator<LogRecord> {
  for await (const located of scanLog(dir, options, options)) yield located.record;
}

type Follow = { signal: AbortSignal; onIdle?: () => void; pollMs?: number };

type Cursor = {
  options: ReadOptions;
  actorBytes: Uint8Array | null;
  typeBytes: Uint8Array | null;
  /** The sequence number the next line must carry; null before the first line. */
  expected: number | null;
};

/**
 * readLog with each record's file and byte offset. Damage throws a RecordDamagedError, except a
 * torn record at the end of the last segment; lines skipped by a filter are not checksummed.
 */
export async function* scanLog(
  dir: string,
  options: ReadOptions = {},
  follow: Follow | null = null,
): AsyncGenerator<LocatedRecord> {
  const cursor: Cursor = {
    options,
    actorBytes: options.actor === undefined
      ? null
      : ENCODER.encode(`"actor":${JSON.stringify(options.actor)},"type":`),
    typeBytes: options.type === undefined
      ? null
      : ENCODER.encode(`"type":${JSON.stringify(options.type)},"v":`),
    expected: null,
  };
  let segments = await listSegments(dir);
  let segment = startSegment(segments, options.from);
  while (true) {
    if (!segment) {
      if (!follow || !await pause(follow)) return;
      segments = await listSegments(dir);
      segment = startSegment(segments, options.from);
      continue;
    }
    const current: Segment = segment;
    const newer = async () => {
      if (follow) segments = await listSegments(dir);
      return segments.find((other) => other.firstSeq > current.firstSeq) ?? null;
    };
    if ((yield* readSegment(current, cursor, newer, follow)) === STOP) return;
    segment = await newer() ?? undefined;
    if (!segment) return;
  }
}

/** The segment to start at: the last whose first sequence number is at most `from`. */
function startSegment(segments: Segment[], from: number | undefined): Segment | undefined {
  if (from === undefined) return segments[0];
  return segments.findLast((segment) => segment.firstSeq <= from) ?? segments[0];
}

/** Waits one poll interval; false once the signal aborted. */
async function pause(follow: Follow): Promise<boolean> {
  follow.onIdle?.();
  if (follow.signal.aborted) return false;
  try {
    await sleep(follow.pollMs ?? 150, undefined, { signal: follow.signal });
    return true;
  } catch {
    return false;
  }
}

async function* readSegment(
  segment: Segment,
  cursor: Cursor,
  newer: () => Promise<Segment | null>,
  follow: Follow | null,
): AsyncGenerator<LocatedRecord, typeof STOP | undefined> {
  if (cursor.expected !== null && segment.firstSeq !== cursor.expected) {
    throw new RecordDamagedError(
      segment.path,
      0,
      cursor.expected,
      `segment is named for sequence ${segment.firstSeq}`,
    );
  }
  using file = await Deno.open(segment.path, { read: true });
  const chunk = new Uint8Array(CHUNK_BYTES);
  let carry = new Uint8Array(0);
  let base = 0; // the file offset of carry[0]
  // Set once a newer segment exists: this one is complete once read to its end.
  let complete = !follow;
  while (true) {
    const n = await file.read(chunk);
    if (n === null) {
      if (complete) return finishSegment(segment, cursor, carry, base, await newer() === null);
      // Following the last segment: it is complete once a newer one exists, else wait.
      if (await newer() !== null) complete = true;
      else if (!await pause(follow!)) return STOP;
      // Read a partial record again from its start: a restarted Berth cuts a torn record and
      // writes new ones in its place.
      if (carry.length > 0) {
        await file.seek(base, Deno.SeekMode.Start);
        carry = new Uint8Array(0);
      }
      continue;
    }
    const bytes = carry.length === 0 ? chunk.subarray(0, n) : concat(carry, chunk.subarray(0, n));
    let offset = 0;
    for (let end = bytes.indexOf(NEWLINE); end !== -1; end = bytes.indexOf(NEWLINE, offset)) {
      const record = lineRecord(bytes, offset, end, base + offset, segment, cursor);
      if (record === STOP) return STOP;
      if (record) yield { record, file: segment.path, offset: base + offset };
      offset = end + 1;
      if (cursor.options.to !== undefined && cursor.expected! > cursor.options.to) return STOP;
    }
    carry = bytes.slice(offset);
    base += offset;
  }
}

function finishSegment(
  segment: Segment,
  cursor: Cursor,
  carry: Uint8Array,
  base: number,
  isLast: boolean,
): undefined {
  if (carry.length > 0) {
    const expected = cursor.expected ?? segment.firstSeq;
    if (!isLast) {
      throw new RecordDamagedError(segment.path, base, expected, "record has no end of line");
    }
    cursor.options.onTorn?.({ file: segment.path, offset: base, bytes: carry.length });
  }
  cursor.options.onSegment?.(segment, base + carry.length);
  return undefined;
}

/** The record on line [start, end), null when a filter skips it, STOP past `to`. */
function lineRecord(
  bytes: Uint8Array,
  start: number,
  end: number,
  fileOffset: number,
  segment: Segment,
  cursor: Cursor,
): LogRecord | null | typeof STOP {
  const { from, to, actor, type } = cursor.options;
  const expected = cursor.expected ?? segment.firstSeq;
  if (to !== undefined && expected > to) return STOP;
  const damaged = (reason: string) =>
    new RecordDamagedError(segment.path, fileOffset, expected, reason);
  let seq = prefixSeq(bytes, start, end);
  let decoded: DecodeResult | null = null;
  if (seq !== expected) {
    // Decoding tells a damaged line (the likelier cause) from a well-formed one out of order.
    decoded = decodeRecord(bytes, start);
    if (!decoded.ok) throw damaged(decoded.reason);
    if (decoded.record.seq !== expected) throw damaged(`record has sequence ${decoded.record.seq}`);
    seq = expected;
  }
  cursor.expected = seq + 1;
  if (from !== undefined && seq < from) return null;
  // Filtered out without decoding: encodeRecord writes these fields in this order and form.
  if (decoded === null) {
    if (cursor.actorBytes && !contains(bytes, start, end, cursor.actorBytes)) return null;
    if (cursor.typeBytes && !contains(bytes, start, end, cursor.typeBytes)) return null;
    decoded = decodeRecord(bytes, start);
    if (!decoded.ok) throw damaged(decoded.reason);
  }
  const record = decoded.record;
  if (record.seq !== seq) throw damaged(`record has sequence ${record.seq}`);
  if (actor !== undefined && record.actor !== actor) return null;
  if (type !== undefined && record.type !== type) return null;
  return record;
}

/** The number after `{"seq":` at the start of a line, or null when the line does not start so. */
function prefixSeq(bytes: Uint8Array, start: number, end: number): number | null {
  for (let i = 0; i < SEQ_PREFIX.length; i++) {
    if (bytes[start + i] !== SEQ_PREFIX[i]) return null;
  }
  let value = 0;
  let i = start + SEQ_PREFIX.length;
  const limit = Math.min(end, i + 16);
  for (; i < limit; i++) {
    const digit = bytes[i]! - 0x30;
    if (digit < 0 || digit > 9) break;
    value = value * 10 + digit;
  }
  return i > start + SEQ_PREFIX.length && bytes[i] === 0x2c ? value : null;
}

function contains(bytes: Uint8Array, start: number, end: number, pattern: Uint8Array): boolean {
  const last = end - pattern.length;
  for (let i = bytes.indexOf(pattern[0]!, start); i !== -1 && i <= last;) {
    let j = 1;
    while (j < pattern.length && bytes[i + j] === pattern[j]) j++;
    if (j === pattern.length) return true;
    i = bytes.indexOf(pattern[0]!, i + 1);
  }
  return false;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
