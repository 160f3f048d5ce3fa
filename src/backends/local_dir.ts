// The local directory backend: each volume is <root>/<name>/_data on this host.
// Creation and removal are renames, so a crash leaves either the whole volume or none of it.
import { join } from "node:path";
import { z } from "zod";
import { someNames } from "../../machines/wire_map.ts";
import { BackendError, BackendOptionsError, type VolumeBackend } from "./volume_backend.ts";

const ID_REGEXP = /^\d{1,10}$/;
const MODE_REGEXP = /^0?[0-7]{3,4}$/;
/** The largest uid or gid: 2^32 - 1 means "leave unchanged" to chown, and more wraps around. */
const MAX_ID = 4294967294;

const Id = z.string().regex(ID_REGEXP, "must be a number")
  .refine((text) => Number(text) <= MAX_ID, `must be at most ${MAX_ID}`);

const LocalDirOptions = z.strictObject({
  uid: Id.optional(),
  gid: Id.optional(),
  mode: z.string().regex(MODE_REGEXP, "must be octal, like 0750").optional(),
});

/** A backend keeping volumes under `root` (created 0700 if missing). */
export function createLocalDirBackend(root: string): VolumeBackend {
  const volumeDir = (name: string) => join(root, name);
  const dataDir = (name: string) => join(root, name, "_data");
  // Leftovers of a crash mid-create or mid-remove are garbage: the state-dir lock makes this
  // process the only user of .staging, so the first use of it clears it.
  // The root is checked first, every time until it passes: it must never be a symlink, or every
  // volume would be made wherever it points.
  let prepared: Promise<void> | null = null;
  const prepare = () =>
    prepared ??= (async () => {
      if (!await realDir(root)) await Deno.mkdir(root, { recursive: true, mode: 0o700 });
      await Deno.remove(join(root, ".staging"), { recursive: true }).catch(() => {});
      await Deno.mkdir(join(root, ".staging"), { mode: 0o700 });
    })().catch((error) => {
      prepared = null;
      throw error instanceof BackendError ? error : new BackendError(describe(error));
    });
  /** Whether the volume's directory and its _data are there, both real directories. */
  const present = async (name: string) =>
    await realDir(volumeDir(name)) && await realDir(dataDir(name));

  return {
    checkOptions(opts) {
      const parsed = LocalDirOptions.safeParse(opts);
      if (parsed.success) return;
      const issue = parsed.error.issues[0]!;
      if (issue.code === "unrecognized_keys") {
        const names = someNames(issue.keys);
        throw new BackendOptionsError(
          `unknown option${issue.keys.length > 1 ? "s" : ""} ${names} (known: uid, gid, mode)`,
        );
      }
      throw new BackendOptionsError(`option "${issue.path.join(".")}" ${issue.message}`);
    },
    async create(name, opts) {
      await prepare();
      if (await present(name)) return { mountpoint: dataDir(name) };
      // Staging names never include the volume's: a 255-character name must fit as it is.
      const staging = join(root, ".staging", crypto.randomUUID());
      try {
        await Deno.mkdir(join(staging, "_data"), { recursive: true, mode: 0o700 });
        await applyOptions(join(staging, "_data"), opts);
        await Deno.rename(staging, volumeDir(name));
      } catch (error) {
        await Deno.remove(staging, { recursive: true }).catch(() => {});
        throw new BackendError(`cannot create ${volumeDir(name)}: ${describe(error)}`);
      }
      return { mountpoint: dataDir(name) };
    },
    async mount(name) {
      await prepare();
      if (!await present(name)) {
        throw new BackendError(`directory ${dataDir(name)} does not exist`);
      }
      return { mountpoint: dataDir(name) };
    },
    unmount() {
      return Promise.resolve();
    },
    async remove(name) {
      await prepare();
      // A symlink in the volume's place is moved away and deleted itself, never followed.
      const doomed = join(root, ".staging", `${crypto.randomUUID()}.removed`);
      try {
        await Deno.rename(volumeDir(name), doomed);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return;
        throw new BackendError(`cannot remove ${volumeDir(name)}: ${describe(error)}`);
      }
      await Deno.remove(doomed, { recursive: true }).catch(() => {});
    },
    survey() {
      // One listing of the root, not a stat per volume: a volume's directory and its _data come
      // and go together (create and remove are renames of the whole directory). Synchronous on
      // purpose: it runs once, at start, and Deno's async listing took twice as long (320 ms
      // against 170 ms for 100,000 volumes).
      const seen = new Set<string>();
      try {
        if (Deno.lstatSync(root).isSymlink) throw new BackendError(symlinkMessage(root));
        // A symlink's entry is not a directory: such a volume counts as missing.
        for (const entry of Deno.readDirSync(root)) if (entry.isDirectory) seen.add(entry.name);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) return Promise.reject(error);
      }
      seen.delete(".staging");
      return Promise.resolve({
        inspect: (name: string) => ({ present: seen.has(name), mountpoint: dataDir(name) }),
      });
    },
  };
}

async function applyOptions(dir: string, opts: Record<string, string>) {
  const mode = opts.mode === undefined ? 0o755 : parseInt(opts.mode, 8);
  await Deno.chmod(dir, mode);
  if (opts.uid !== undefined || opts.gid !== undefined) {
    const uid = opts.uid === undefined ? null : Number(opts.uid);
    const gid = opts.gid === undefined ? null : Number(opts.gid);
    await Deno.chown(dir, uid, gid);
  }
}

/**
 * Whether `path` is a directory, looked at without following a symlink: false when nothing is
 * there; BackendError when a symlink or something else is.
 */
async function realDir(path: string): Promise<boolean> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
  if (info.isSymlink) throw new BackendError(symlinkMessage(path));
  if (!info.isDirectory) throw new BackendError(`${path} is not a directory`);
  return true;
}

function symlinkMessage(path: string): string {
  return `${path} is a symlink; Berth never follows one out of its state directory`;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
