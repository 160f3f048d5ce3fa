// A sealed line: one JSON object on one line whose last field is a CRC-32 of the rest, the form of
// log records and snapshot lines alike. Pure: text in, bytes out, and back.
// `{"a":1,…,"crc":"1a2b3c4d"}\n`
import { crc32 } from "node:zlib";

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder("utf-8", { fatal: true });
/** `,"crc":"xxxxxxxx"}` — fixed length, so the checked bytes are found without parsing. */
const CRC_SUFFIX_LENGTH = 18;
const CLOSE_BRACE = ENCODER.encode("}");
const NEWLINE = 0x0a;

/**
 * The line for `body`, a JSON object's text without its closing brace (`{"a":1`), newline
 * included. Encoded once with a placeholder checksum that is filled in place: this is on every
 * reply's path.
 */
export function sealLine(body: string): Uint8Array {
  const line = ENCODER.encode(`${body},"crc":"00000000"}\n`);
  const bodyEnd = line.length - CRC_SUFFIX_LENGTH - 1;
  const crc = crc32(CLOSE_BRACE, crc32(line.subarray(0, bodyEnd)));
  const hex = crc.toString(16).padStart(8, "0");
  for (let i = 0; i < 8; i++) line[bodyEnd + 8 + i] = hex.charCodeAt(i);
  return line;
}

export type OpenedLine =
  | { ok: true; value: unknown; next: number }
  | { ok: false; reason: string; torn: boolean };

/**
 * The object sealed in the line that starts at `offset`, checksum checked, without its `crc`
 * field's text. `torn` says the bytes simply stop (no newline): what a crash in the middle of a
 * write leaves at the end of a file.
 */
export function openLine(bytes: Uint8Array, offset: number): OpenedLine {
  const end = bytes.indexOf(NEWLINE, offset);
  if (end === -1) return { ok: false, reason: "record has no end of line", torn: true };
  const fail = (reason: string): OpenedLine => ({ ok: false, reason, torn: false });
  if (end - offset <= CRC_SUFFIX_LENGTH) return fail("record too short");
  const bodyEnd = end - CRC_SUFFIX_LENGTH;
  // The checksum field read from the bytes themselves: no text decoded, no pattern run.
  const expected = sealedChecksum(bytes, bodyEnd);
  if (expected === null) return fail("record has no checksum field");
  const actual = crc32(CLOSE_BRACE, crc32(bytes.subarray(offset, bodyEnd)));
  if (actual !== expected) return fail("checksum mismatch");
  try {
    // The whole line is JSON as it stands; its `crc` field comes along and is left unread.
    return {
      ok: true,
      value: JSON.parse(DECODER.decode(bytes.subarray(offset, end))),
      next: end + 1,
    };
  } catch {
    return fail("record is not JSON");
  }
}

const SUFFIX_HEAD = ENCODER.encode(',"crc":"');
const QUOTE = 0x22;
const CLOSE = 0x7d;

/** The value of the `,"crc":"xxxxxxxx"}` field that starts at `at`, or null if it is not one. */
function sealedChecksum(bytes: Uint8Array, at: number): number | null {
  for (let i = 0; i < SUFFIX_HEAD.length; i++) if (bytes[at + i] !== SUFFIX_HEAD[i]) return null;
  let value = 0;
  for (let i = at + SUFFIX_HEAD.length; i < at + SUFFIX_HEAD.length + 8; i++) {
    const digit = hexDigit(bytes[i]!);
    if (digit === -1) return null;
    value = value * 16 + digit;
  }
  const tail = at + SUFFIX_HEAD.length + 8;
  return bytes[tail] === QUOTE && bytes[tail + 1] === CLOSE ? value : null;
}

/** 0–15 for a lower-case hex digit's byte, else -1 (the writer writes lower case only). */
function hexDigit(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x61 + 10;
  return -1;
}
