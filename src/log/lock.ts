// The state-directory lock: one engine owns a state dir; a second one is told who holds it.
import { join } from "node:path";
import { openNoFollow } from "./_no_follow.ts";

/** Another process holds the state directory. */
export class StateDirLockedError extends Error {
  override name = "StateDirLockedError";
}

/**
 * Holds an exclusive flock on the state directory itself (released by the kernel if the process
 * dies), and on `<dir>/lock`, which names the holder.
 */
export type StateDirLock = { path: string; release(): void } & Disposable;

/** Takes the lock on `dir` (created 0700 if missing) or throws naming the holder. */
export async function lockStateDir(dir: string): Promise<StateDirLock> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, "lock");
  // The directory, not only the file: a lock file can be deleted under a running Berth, and a
  // second one would then lock a fresh file and write the same sequence numbers. The directory
  // cannot go while it holds the log. The file is still locked too, against an older Berth.
  const directory = await Deno.open(dir, { read: true });
  let file: Deno.FsFile | null = null;
  try {
    if (!directory.tryLockSync(true)) throw await locked(dir, path);
    file = await openNoFollow(path, { read: true, write: true, create: true, mode: 0o600 });
    if (!file.tryLockSync(true)) throw await locked(dir, path);
  } catch (error) {
    file?.close();
    directory.close();
    throw error;
  }
  const note = `pid ${Deno.pid}, started ${new Date().toISOString()}\n`;
  await file.truncate(0);
  await file.write(new TextEncoder().encode(note));
  let released = false;
  function release() {
    if (released) return;
    released = true;
    file!.close();
    directory.close();
  }
  return { path, release, [Symbol.dispose]: release };
}

async function locked(dir: string, path: string): Promise<StateDirLockedError> {
  // Read without following a link: its target is not the holder's note.
  const holder = await Deno.lstat(path).then(
    (info) => info.isFile ? Deno.readTextFile(path).then((text) => text.trim()) : "",
    () => "",
  );
  return new StateDirLockedError(
    `Cannot lock state dir ${dir}: held by another Berth (${holder || "holder unknown"})`,
  );
}
