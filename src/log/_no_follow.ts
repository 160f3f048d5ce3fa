// Opening inside the state dir without following symbolic links: a link there (to a file or
// directory elsewhere) would make Berth write, truncate, chmod or create outside its state dir.
// Deno.open has no O_NOFOLLOW: the name is lstat-ed before, and the file opened is checked to be
// the one looked at, so a link swapped in between is caught too. Imports nothing.
import { join } from "node:path";

/** An entry of the state dir is a symbolic link; the message names it, in one line. */
export class SymlinkRefusedError extends Error {
  override name = "SymlinkRefusedError";
  constructor(readonly path: string) {
    super(
      `Cannot use ${path}: it is a symbolic link, and Berth follows none inside its state dir ` +
        `(put the real file or directory there, or point --state-dir elsewhere)`,
    );
  }
}

/** The entry at `path` as lstat sees it, null when missing; throws if it is a symbolic link. */
export async function refuseSymlink(path: string): Promise<Deno.FileInfo | null> {
  try {
    const info = await Deno.lstat(path);
    if (info.isSymlink) throw new SymlinkRefusedError(path);
    return info;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** Deno.open of a file that must not be (or become) a symbolic link. */
export async function openNoFollow(path: string, options: Deno.OpenOptions): Promise<Deno.FsFile> {
  const before = await refuseSymlink(path);
  const file = await Deno.open(path, options);
  try {
    const opened = await file.stat();
    const named = before ?? await refuseSymlink(path);
    if (!named || named.ino !== opened.ino || named.dev !== opened.dev) {
      throw new SymlinkRefusedError(path);
    }
    return file;
  } catch (error) {
    file.close();
    throw error;
  }
}

/** Throws for the first entry of `dir` that is a symbolic link and whose name `matches`. */
export async function refuseLinkedEntries(dir: string, matches: RegExp[]): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isSymlink && matches.some((pattern) => pattern.test(entry.name))) {
      throw new SymlinkRefusedError(join(dir, entry.name));
    }
  }
}
