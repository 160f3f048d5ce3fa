// Where a log's last segment ends: its last good record, found from its last bytes alone, and a
// torn record after it. Used by the file store at open; imports nothing of the engine.
import { decodeRecord } from "./record.ts";
import { LogDamagedError } from "./segments.ts";

const NEWLINE = 0x0a;
const TAIL_WINDOW = 64 * 1024;

/**
 * Where the good records of the last segment end, and the sequence number of the last one, from
 * its last bytes alone. Only a torn record — bytes after the last end of line, what a crash in the
 * middle of a write leaves — is cut off, with a warning: it was never acknowledged. A complete
 * line that does not decode may have been acknowledged: that is damage, as anywhere else.
 */
export async function readTail(
  path: string,
  firstSeq: number,
  warn: (message: string) => void,
): Promise<{ size: number; lastSeq: number }> {
  using file = await Deno.open(path, { read: true });
  const length = (await file.stat()).size;
  for (let window = TAIL_WINDOW;; window *= 2) {
    const start = Math.max(0, length - window);
    const bytes = await readAt(file, start, length - start);
    const found = lastGoodRecord(path, bytes, start, firstSeq);
    if (found) {
      if (found.size < length) {
        warn(
          `Cut off a torn last record in ${path} at byte ${found.size} ` +
            `(${length - found.size} bytes: record has no end of line); it was never acknowledged`,
        );
      }
      return found;
    }
  }
}

/** The last good record in `bytes` (read from `start`); null when the window must grow. */
function lastGoodRecord(
  path: string,
  bytes: Uint8Array,
  start: number,
  firstSeq: number,
): { size: number; lastSeq: number } | null {
  const end = bytes.lastIndexOf(NEWLINE) + 1;
  if (end === 0 && start > 0) return null;
  if (end === 0) return { size: 0, lastSeq: firstSeq - 1 };
  const lineStart = bytes.lastIndexOf(NEWLINE, end - 2) + 1;
  if (lineStart === 0 && start > 0) return null;
  const result = decodeRecord(bytes, lineStart);
  if (!result.ok) throw new LogDamagedError(path, start + lineStart, result.reason);
  return { size: start + end, lastSeq: result.record.seq };
}

async function readAt(file: Deno.FsFile, offset: number, length: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  await file.seek(offset, Deno.SeekMode.Start);
  let read = 0;
  while (read < length) {
    const n = await file.read(bytes.subarray(read));
    if (n === null) break;
    read += n;
  }
  return bytes.subarray(0, read);
}
