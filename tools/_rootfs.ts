// What goes into the plugin's rootfs, found from this machine alone: the npm packages main.ts
// needs (from deno.lock, out of Deno's own cache) and the shared libraries a binary loads (ldd).
import { dirname, join } from "node:path";

type LockEntry = { dependencies?: string[]; optionalDependencies?: string[] };

/** "name@version_peer…" → name and version; the name may start with "@". */
export function splitPackageKey(key: string): { name: string; version: string } {
  const at = key.indexOf("@", 1);
  if (at < 0) throw new Error(`Cannot read npm package key "${key}": no version`);
  return { name: key.slice(0, at), version: key.slice(at + 1).split("_")[0]! };
}

/**
 * Every deno.lock npm key reachable from `roots`. A dependency is either a whole key or, when the
 * lock holds one version of it, a bare name.
 */
export function npmClosure(lock: Record<string, LockEntry>, roots: Iterable<string>): string[] {
  const byName = new Map<string, string[]>();
  for (const key of Object.keys(lock)) {
    const { name } = splitPackageKey(key);
    byName.set(name, [...byName.get(name) ?? [], key]);
  }
  const seen = new Set<string>();
  const todo = [...roots];
  while (todo.length > 0) {
    const key = todo.pop()!;
    if (seen.has(key)) continue;
    const entry = lock[key];
    if (!entry) throw new Error(`Cannot find npm package "${key}" in deno.lock`);
    seen.add(key);
    for (const dep of [...entry.dependencies ?? [], ...entry.optionalDependencies ?? []]) {
      const keys = dep in lock ? [dep] : byName.get(dep) ?? [];
      if (keys.length !== 1) {
        throw new Error(`Cannot resolve "${dep}" (needed by "${key}") in deno.lock`);
      }
      todo.push(keys[0]!);
    }
  }
  return [...seen].sort();
}

/** The libraries `ldd` names for `binary`, the dynamic loader included (vdso excluded). */
export async function sharedLibraries(binary: string): Promise<string[]> {
  const out = await new Deno.Command("ldd", { args: [binary], stdin: "null" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`Cannot list the libraries of ${binary}: ldd failed`);
  const libraries = text.split("\n").flatMap((line) => {
    const path = line.match(/=>\s+(\/\S+)/)?.[1] ?? line.match(/^\s*(\/\S+)/)?.[1];
    return path ? [path] : [];
  });
  return [...new Set(libraries)];
}

/** Copies `source` (symlinks followed) to the same absolute path under `root`. */
export async function copyInto(root: string, source: string, target = source): Promise<void> {
  const to = join(root, target);
  await Deno.mkdir(dirname(to), { recursive: true });
  await Deno.copyFile(source, to);
}

/** Copies a directory tree (files and directories only; symlinks followed), but `skip`ped names. */
export async function copyTree(
  from: string,
  to: string,
  skip: (name: string) => boolean = () => false,
): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (skip(entry.name)) continue;
    const [source, target] = [join(from, entry.name), join(to, entry.name)];
    const info = await Deno.stat(source);
    if (info.isDirectory) await copyTree(source, target, skip);
    else if (info.isFile) await Deno.copyFile(source, target);
  }
}

/** Bytes under `dir`, each file once. */
export async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    const info = await Deno.lstat(path);
    total += info.isDirectory ? await treeBytes(path) : info.size;
  }
  return total;
}

type DenoJson = { imports?: Record<string, string>; [key: string]: unknown };
type DenoLock = {
  specifiers?: Record<string, string>;
  npm: Record<string, LockEntry>;
  workspace?: { dependencies?: string[] };
  [key: string]: unknown;
};

/** The npm package name a specifier like "npm:/@scope/name@1.2.3/sub" names. */
function npmName(specifier: string): string | undefined {
  const rest = specifier.match(/^npm:\/?(.+)$/)?.[1];
  return rest === undefined ? undefined : splitPackageKey(rest).name;
}

/**
 * deno.json and deno.lock cut down to the npm packages `keys` holds: Deno makes sure every
 * package of the config's imports and the lock's workspace is cached before it runs anything,
 * so the inspector's browser-only packages (mermaid alone is 200 MiB) must not be named.
 */
export function trimManifests<L extends DenoLock>(denoJson: DenoJson, lock: L, keys: string[]) {
  const names = new Set(keys.map((key) => splitPackageKey(key).name));
  const wanted = (specifier: string) => names.has(npmName(specifier) ?? "");
  const imports = Object.fromEntries(
    Object.entries(denoJson.imports ?? {}).filter(([, target]) => wanted(target)),
  );
  const config = {
    imports,
    compilerOptions: denoJson["compilerOptions"],
    nodeModulesDir: denoJson["nodeModulesDir"],
  };
  const kept = new Set(keys);
  const trimmedLock = {
    ...lock,
    specifiers: Object.fromEntries(
      Object.entries(lock.specifiers ?? {}).filter(([specifier, version]) =>
        kept.has(`${npmName(specifier)}@${version}`)
      ),
    ),
    npm: Object.fromEntries(Object.entries(lock.npm).filter(([key]) => kept.has(key))),
    workspace: { dependencies: (lock.workspace?.dependencies ?? []).filter(wanted) },
  };
  return { config, lock: trimmedLock };
}

/** Deletes the files under `dir` whose name `matches`. */
export async function removeFiles(dir: string, matches: (name: string) => boolean): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) await removeFiles(path, matches);
    else if (matches(entry.name)) await Deno.remove(path);
  }
}
