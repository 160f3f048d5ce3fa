// A sealed line: one JSON object on one line whose last field is a CRC-32 of the rest, the form of
// log records and snapshot lines alike. Pure: text in, bytes out, and back.
// `{"a":1,…,"crc":"1a2b3c4d"}\n`
import { crc32 } from "node:zlib";

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder("utf-8", { fatal: true });
/** `,"crc":"xxxxxxxx"}` — fixed length, so the checked bytes are found without parsing. */
const CRC_SUFFIX_LENGTH = 18;
const CRC_SUFFIX_REGEXP = /^,"crc":"([0-9a-f]{8})"\}$/;
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
  try {
    return {
      ok: true,
      value: JSON.parse(DECODER.decode(bytes.subarray(offset, bodyEnd)) + "}"),
      next: end + 1,
    };
  } catch {
    return fail("record is not JSON");
  }
}
