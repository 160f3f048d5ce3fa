// The state-directory lock: one engine owns a state dir; a second one is told who holds it.
import { join } from "node:path";

/** Another process holds the state directory. */
export class StateDirLockedError extends Error {
  override name = "StateDirLockedError";
}

/** Holds an exclusive flock on `<dir>/lock` (released by the kernel if the process dies). */
export type StateDirLock = { path: string; release(): void } & Disposable;

/** Takes the lock on `dir` (created 0700 if missing) or throws naming the holder. */
export async function lockStateDir(dir: string): Promise<StateDirLock> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, "lock");
  const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  if (!file.tryLockSync(true)) {
    const holder = new TextDecoder().decode(await Deno.readFile(path)).trim();
    file.close();
    throw new StateDirLockedError(
      `Cannot lock state dir ${dir}: held by another Berth (${holder || "holder unknown"})`,
    );
  }
  const note = `pid ${Deno.pid}, started ${new Date().toISOString()}\n`;
  await file.truncate(0);
  await file.write(new TextEncoder().encode(note));
  let released = false;
  function release() {
    if (released) return;
    released = true;
    file.close();
  }
  return { path, release, [Symbol.dispose]: release };
}
