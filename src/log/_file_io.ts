// Small file helpers of the file store: a whole write, a directory sync, an error's text.

export async function writeAll(file: Deno.FsFile, bytes: Uint8Array) {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}

export async function syncDir(dir: string) {
  using handle = await Deno.open(dir, { read: true });
  await handle.sync();
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
