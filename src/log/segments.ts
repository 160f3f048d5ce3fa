// What a log segment is on disk: its file name, and the error that names a damaged one. Shared by
// the file store (which writes) and the reader (which only reads); imports nothing.

/** A log that cannot be read safely: names the segment and the byte offset. */
export class LogDamagedError extends Error {
  override name = "LogDamagedError";
  constructor(readonly file: string, readonly offset: number, reason: string) {
    super(`Cannot read log: ${file} is damaged at byte ${offset}: ${reason}`);
  }
}

/** A segment's file name: the sequence number of its first record, 20 digits, `.log`. */
export const SEGMENT_REGEXP = /^(\d{20})\.log$/;

export function segmentName(firstSeq: number): string {
  return `${String(firstSeq).padStart(20, "0")}.log`;
}
