// What the fault suite shares: a start that must be refused (bounded, so that a Berth that does
// start fails the test instead of hanging it), and small waits. Imports nothing of src/.
import { join } from "node:path";
import { spawnBerth } from "../helpers/berth_process.ts";

/** Runs `berth serve args`, which must exit on its own within `timeoutMs`; its code and stderr. */
export async function refusedStart(
  args: string[],
  timeoutMs = 15_000,
): Promise<{ code: number; stderr: string }> {
  await using berth = spawnBerth(args);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), timeoutMs));
  const status = await Promise.race([berth.exited(), late]);
  clearTimeout(timer);
  if (status === null) throw new Error(`Berth started where it must refuse:\n${berth.stderr()}`);
  return { code: status.code, stderr: berth.stderr() };
}

/** A small filesystem mounted for one test; disposing thaws it, unmounts it and removes it. */
export type Mounted = { path: string } & AsyncDisposable;

async function run(command: string, args: string[]): Promise<void> {
  const output = await new Deno.Command(command, { args, stdin: "null" }).output();
  if (!output.success) {
    const why = new TextDecoder().decode(output.stderr).trim();
    throw new Error(`${command} ${args.join(" ")} failed: ${why}`);
  }
}

/**
 * A size-limited tmpfs (`sizeKiB`) or a loop-mounted ext4 image of `sizeMiB`, under /var/tmp.
 * Needs root, mount, and for ext4 mkfs.ext4 (e2fsprogs) and fsfreeze (util-linux).
 */
export async function mountSmall(
  kind: { tmpfsKiB: number } | { ext4MiB: number },
): Promise<Mounted> {
  const base = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "berth-fault-" });
  const path = `${base}/mnt`;
  const image = `${base}/disk.img`;
  await Deno.mkdir(path);
  let mounted = false;
  try {
    if ("tmpfsKiB" in kind) {
      await run("mount", ["-t", "tmpfs", "-o", `size=${kind.tmpfsKiB}k,mode=0700`, "tmpfs", path]);
    } else {
      await run("truncate", ["-s", `${kind.ext4MiB}M`, image]);
      await run("mkfs.ext4", ["-q", "-F", "-m", "0", image]);
      await run("mount", ["-o", "loop", image, path]);
    }
    mounted = true;
  } catch (error) {
    await Deno.remove(base, { recursive: true }).catch(() => {});
    throw error;
  }
  return {
    path,
    async [Symbol.asyncDispose]() {
      if (mounted) {
        // A frozen filesystem cannot be unmounted: thaw first (an error if it is not frozen).
        await run("fsfreeze", ["-u", path]).catch(() => {});
        await run("umount", [path]).catch(() => run("umount", ["-l", path]));
      }
      await Deno.remove(base, { recursive: true }).catch(() => {});
    },
  };
}

/** Fills the filesystem holding `path` with the file `path` until a write fails for space. */
export async function fillUp(path: string): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true });
  for (const size of [1 << 20, 4096, 1]) {
    const chunk = new Uint8Array(size);
    try {
      while (true) await file.write(chunk);
    } catch (error) {
      if (!(error instanceof Error && /no space left/i.test(error.message))) throw error;
    }
  }
}

/** How many records the log segments of `stateDir` hold (complete lines). */
export function recordsOnDisk(stateDir: string): number {
  const dir = join(stateDir, "log");
  let lines = 0;
  for (const entry of Deno.readDirSync(dir)) {
    if (!entry.name.endsWith(".log")) continue;
    const text = Deno.readTextFileSync(join(dir, entry.name));
    lines += text.split("\n").length - 1;
  }
  return lines;
}
