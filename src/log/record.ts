// The on-disk form of a log record: one JSON line whose last field is a CRC-32 of the rest.
// Pure: bytes in, records out. `{"seq":1,…,"data":{…},"crc":"1a2b3c4d"}\n`
import { crc32 } from "node:zlib";
import type { LogRecord } from "./store.ts";

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder("utf-8", { fatal: true });
/** `,"crc":"xxxxxxxx"}` — fixed length, so the checked bytes are found without parsing. */
const CRC_SUFFIX_LENGTH = 18;
const CRC_SUFFIX_REGEXP = /^,"crc":"([0-9a-f]{8})"\}$/;
const CLOSE_BRACE = ENCODER.encode("}");
const NEWLINE = 0x0a;

/**
 * What is wrong with a decoded line's envelope, or null. Checked by hand, not with a schema: it
 * runs once per record at every start, and the event inside is checked against its machine's
 * schema by replay anyway, so each record is parsed by zod once.
 */
function envelopeProblem(value: unknown): string | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "not an object";
  const record = value as Record<string, unknown>;
  if (!isWhole(record.seq) || record.seq < 1) return "seq must be a whole number from 1";
  if (!isWhole(record.at) || record.at < 0) return "at must be a whole number from 0";
  if (typeof record.actor !== "string" || record.actor === "") return "actor must be text";
  if (typeof record.type !== "string" || record.type === "") return "type must be text";
  if (!isWhole(record.v) || record.v < 1) return "v must be a whole number from 1";
  const data = record.data;
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return "data must be an object";
  }
  return null;
}

function isWhole(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value);
}

/** Encodes a record as its log line, newline included. */
export function encodeRecord(record: LogRecord): Uint8Array {
  const { seq, at, actor, type, v, data } = record;
  // Written out by hand (same bytes as JSON.stringify of the object) and encoded once with a
  // placeholder checksum that is filled in place: this is on every reply's path.
  const line = ENCODER.encode(
    `{"seq":${seq},"at":${at},"actor":${JSON.stringify(actor)},"type":${JSON.stringify(type)}` +
      `,"v":${v},"data":${JSON.stringify(data)},"crc":"00000000"}\n`,
  );
  const bodyEnd = line.length - CRC_SUFFIX_LENGTH - 1;
  const crc = crc32(CLOSE_BRACE, crc32(line.subarray(0, bodyEnd)));
  const hex = crc.toString(16).padStart(8, "0");
  for (let i = 0; i < 8; i++) line[bodyEnd + 8 + i] = hex.charCodeAt(i);
  return line;
}

export type DecodeResult =
  | { ok: true; record: LogRecord; next: number }
  | { ok: false; reason: string; torn: boolean };

/**
 * Decodes the record that starts at `offset`. `torn` says the bytes simply stop (no newline):
 * what a crash in the middle of a write leaves at the end of a log.
 */
export function decodeRecord(bytes: Uint8Array, offset: number): DecodeResult {
  const end = bytes.indexOf(NEWLINE, offset);
  if (end === -1) return { ok: false, reason: "record has no end of line", torn: true };
  const fail = (reason: string): DecodeResult => ({ ok: false, reason, torn: false });
  if (end - offset <= CRC_SUFFIX_LENGTH) return fail("record too short");
  const bodyEnd = end - CRC_SUFFIX_LENGTH;
  let suffix: string;
  try {
    suffix = DECODER.decode(bytes.subarray(bodyEnd, end));
  } catch {
    return fail("checksum field is not text");
  }
  const match = CRC_SUFFIX_REGEXP.exec(suffix);
  if (!match) return fail("record has no checksum field");
  const actual = crc32(CLOSE_BRACE, crc32(bytes.subarray(offset, bodyEnd)));
  if (actual !== parseInt(match[1]!, 16)) return fail("checksum mismatch");
  let parsed: unknown;
  try {
    parsed = JSON.parse(DECODER.decode(bytes.subarray(offset, bodyEnd)) + "}");
  } catch {
    return fail("record is not JSON");
  }
  const problem = envelopeProblem(parsed);
  if (problem !== null) return fail(`record has a bad shape: ${problem}`);
  // The checksum field is outside the checked body; only the envelope's fields are kept.
  const { seq, at, actor, type, v, data } = parsed as LogRecord;
  return { ok: true, record: { seq, at, actor, type, v, data }, next: end + 1 };
}
