// The on-disk form of a log record: one JSON line whose last field is a CRC-32 of the rest.
// Pure: bytes in, records out (the checksum is a sealed line: _sealed_line.ts).
import type { LogRecord } from "./store.ts";
import { openLine, sealLine } from "./_sealed_line.ts";

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
  // Written out by hand: the same bytes as JSON.stringify of the object, without building it.
  return sealLine(
    `{"seq":${seq},"at":${at},"actor":${JSON.stringify(actor)},"type":${JSON.stringify(type)}` +
      `,"v":${v},"data":${JSON.stringify(data)}`,
  );
}

export type DecodeResult =
  | { ok: true; record: LogRecord; next: number }
  | { ok: false; reason: string; torn: boolean };

/**
 * Decodes the record that starts at `offset`. `torn` says the bytes simply stop (no newline):
 * what a crash in the middle of a write leaves at the end of a log.
 */
export function decodeRecord(bytes: Uint8Array, offset: number): DecodeResult {
  const line = openLine(bytes, offset);
  if (!line.ok) return line;
  const problem = envelopeProblem(line.value);
  if (problem !== null) {
    return { ok: false, reason: `record has a bad shape: ${problem}`, torn: false };
  }
  // The checksum field is outside the checked body; only the envelope's fields are kept.
  const { seq, at, actor, type, v, data } = line.value as LogRecord;
  return { ok: true, record: { seq, at, actor, type, v, data }, next: line.next };
}
