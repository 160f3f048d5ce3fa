// Writes a long log straight to disk, for tests that need a slow replay and for the bench: volumes
// created, then mounted and unmounted again and again in turn (four records a cycle).
import { join } from "node:path";
import { encodeRecord } from "../../src/log/record.ts";
import type { LogRecord } from "../../src/log/store.ts";

/**
 * Writes at least `records` records into `<stateDir>/log` over `volumes` volumes (named busy,
 * busy-1, …), and their directories; resolves with the last sequence number.
 */
export async function writeBigLog(stateDir: string, records: number, volumes = 1): Promise<number> {
  const dir = join(stateDir, "log");
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const names = Array.from({ length: volumes }, (_, i) => (i === 0 ? "busy" : `busy-${i}`));
  using file = await Deno.open(join(dir, `${"1".padStart(20, "0")}.log`), {
    create: true,
    write: true,
    truncate: true,
    mode: 0o600,
  });
  let chunks: Uint8Array[] = [];
  const flush = () => {
    const joined = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
    chunks.reduce((at, chunk) => (joined.set(chunk, at), at + chunk.length), 0);
    let written = 0;
    while (written < joined.length) written += file.writeSync(joined.subarray(written));
    chunks = [];
  };
  let seq = 0;
  const add = (name: string, type: string, fields: Record<string, unknown> = {}) => {
    const record: LogRecord = {
      seq: ++seq,
      at: 1_700_000_000_000 + seq,
      actor: `volume/${name}`,
      type,
      v: 1,
      data: fields,
    };
    chunks.push(encodeRecord(record));
    if (chunks.length === 10_000) flush();
  };
  const dataOf = (name: string) => join(stateDir, "volumes", name, "_data");
  for (const name of names) {
    await Deno.mkdir(dataOf(name), { recursive: true });
    add(name, "volume.create", { opts: {} });
    add(name, "effect.succeeded", { mountpoint: dataOf(name) });
  }
  for (let i = 0; seq < records; i++) {
    const name = names[i % names.length]!;
    add(name, "volume.mount", { mountId: "m" });
    add(name, "effect.succeeded", { mountpoint: dataOf(name) });
    add(name, "volume.unmount", { mountId: "m" });
    add(name, "effect.succeeded", {});
  }
  flush();
  return seq;
}
