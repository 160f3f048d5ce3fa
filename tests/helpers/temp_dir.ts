// A temporary directory on the real disk that removes itself: `await using dir = await tempDir()`.

export type TempDir = { path: string } & AsyncDisposable;

/** Makes a fresh directory (under /var/tmp, so fdatasync is real) and removes it on dispose. */
export async function tempDir(prefix = "berth-test-"): Promise<TempDir> {
  const path = await Deno.makeTempDir({ dir: "/var/tmp", prefix });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}
