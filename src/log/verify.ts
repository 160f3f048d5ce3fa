// Verifies a log on disk, read-only: every segment and record, and (through a check it is handed)
// that each event is accepted by its machine. Imports nothing of the engine: the check arrives.
import { RecordDamagedError, scanLog, type TornRecord } from "./reader.ts";
import type { LogRecord } from "./store.ts";

/** Judges each record in log order, as replay would: a reason when it is damage, else null. */
export type RecordCheck = {
  check(record: LogRecord): string | null;
  /** How many actors are live after every record so far. */
  liveActors(): number;
};

export type VerifyOk = {
  ok: true;
  records: number;
  segments: number;
  bytes: number;
  /** 0 for an empty log. */
  lastSeq: number;
  /** Live actors at the end; null when no check was given. */
  actors: number | null;
  /** A torn record at the very end: not damage (never acknowledged; Berth cuts it at start). */
  torn: TornRecord | null;
};

/** The first damage: which segment, at which byte, the sequence number expected there, why. */
export type VerifyDamage = { ok: false; file: string; offset: number; seq: number; reason: string };

export type VerifyResult = VerifyOk | VerifyDamage;

/**
 * Reads the whole log in `dir` once, streaming: checksums, record shapes, sequence continuity
 * across segments, segment names, then `check` on every record. Stops at the first damage.
 */
export async function verifyLog(
  dir: string,
  options: { check?: RecordCheck } = {},
): Promise<VerifyResult> {
  const { check } = options;
  let records = 0;
  let segments = 0;
  let bytes = 0;
  let lastSeq = 0;
  let torn: TornRecord | null = null;
  const scan = scanLog(dir, {
    onTorn: (found) => torn = found,
    onSegment: (_, size) => {
      segments++;
      bytes += size;
    },
  });
  try {
    for await (const { record, file, offset } of scan) {
      const reason = check?.check(record) ?? null;
      if (reason !== null) return { ok: false, file, offset, seq: record.seq, reason };
      records++;
      lastSeq = record.seq;
    }
  } catch (error) {
    if (!(error instanceof RecordDamagedError)) throw error;
    const { file, offset, seq, reason } = error;
    return { ok: false, file, offset, seq, reason };
  }
  return { ok: true, records, segments, bytes, lastSeq, actors: check?.liveActors() ?? null, torn };
}
