// The on-disk form of a log record: one JSON line whose last field is a CRC-32 of the rest.
// Pure: bytes in, records out. `{"seq":1,…,"data":{…},"crc":"1a2b3c4d"}\n`
import { z } from "zod";
import { crc32 } from "node:zlib";
import type { LogRecord } from "./store.ts";

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder("utf-8", { fatal: true });
/** `,"crc":"xxxxxxxx"}` — fixed length, so the checked bytes are found without parsing. */
const CRC_SUFFIX_LENGTH = 18;
const CRC_SUFFIX_REGEXP = /^,"crc":"([0-9a-f]{8})"\}$/;
const CLOSE_BRACE = ENCODER.encode("}");
const NEWLINE = 0x0a;

const LogRecordSchema = z.object({
  seq: z.number().int().positive(),
  at: z.number().int().nonnegative(),
  actor: z.string().min(1),
  type: z.string().min(1),
  v: z.number().int().positive(),
  data: z.record(z.string(), z.unknown()),
});

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
  const record = LogRecordSchema.safeParse(parsed);
  if (!record.success) return fail(`record has a bad shape: ${record.error.issues[0]?.message}`);
  return { ok: true, record: record.data, next: end + 1 };
}
