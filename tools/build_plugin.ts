// `deno task plugin`: builds build/plugin (config.json + rootfs/) for `docker plugin create`, from
// what this machine has installed and cached, never from a registry: the Deno binary, Berth's code
// and the npm packages main.ts needs (DENO_DIR inside the rootfs), `ip`, and their libraries.
import { join, relative } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { parseArgs } from "node:util";
import {
  copyInto,
  copyTree,
  npmClosure,
  removeFiles,
  sharedLibraries,
  splitPackageKey,
  treeBytes,
  trimManifests,
} from "./_rootfs.ts";
import {
  APP_DIR,
  DENO_BINARY,
  DENO_DIR,
  PLUGIN_SOCKET_DIR,
  pluginConfig,
  PROPAGATED_MOUNT,
  STATE_DIR,
} from "./plugin_config.ts";

const REPO = fromFileUrl(new URL("..", import.meta.url));
/**
 * A proxy nothing answers: a build step that tries the network fails loudly. (A different
 * NPM_CONFIG_REGISTRY would not do: Deno keys its npm cache by registry host.)
 */
const NO_NETWORK = { HTTP_PROXY: "http://127.0.0.1:9", HTTPS_PROXY: "http://127.0.0.1:9" };
const MIB = 1024 * 1024;

/** Deno's mark that it warned of a package's build script, one per project path on a host. */
function isWarnedMark(name: string): boolean {
  return name.startsWith(".scripts-warned-");
}

const HELP = `Usage: deno task plugin [--out DIR] [--version V]

Builds DIR (default: build/plugin) with config.json and rootfs/ for
  docker plugin create NAME DIR
offline, from this machine: the Deno binary, main.ts and the files it imports, the npm packages it
needs copied out of Deno's cache (DENO_DIR, default ~/.cache/deno), ip and bridge from iproute2,
and the shared libraries of all three (ldd). Then checks that main.ts loads with --cached-only from the
rootfs' DENO_DIR: as root inside the rootfs with no network at all (which also warms Deno's caches
for the plugin's first start), otherwise from here behind a dead proxy.

Options:
  --out DIR      where to build (default: build/plugin; replaced)
  --version V    the version in config.json's description (default: git describe)
`;

function say(line: string) {
  Deno.stderr.writeSync(new TextEncoder().encode(`${line}\n`));
}

async function run(program: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(program, { args, env, stdin: "null", cwd: REPO }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  if (!out.success) {
    throw new Error(`${program} ${args.join(" ")} failed: ${decode(out.stderr).trim()}`);
  }
  return decode(out.stdout);
}

type DenoInfo = {
  modules: { kind?: string; specifier: string; local?: string; npmPackage?: string }[];
};

/** The local files main.ts imports, and the npm package keys it loads directly. */
async function moduleGraph(): Promise<{ files: string[]; npmRoots: string[] }> {
  const info = JSON.parse(await run(await denoBinary(), ["info", "--json", "main.ts"], NO_NETWORK));
  const files: string[] = [];
  const npmRoots = new Set<string>();
  for (const module of (info as DenoInfo).modules) {
    if (module.kind === "npm" && module.npmPackage) npmRoots.add(module.npmPackage);
    else if (module.specifier.startsWith("file:")) files.push(fromFileUrl(module.specifier));
  }
  return { files, npmRoots: [...npmRoots] };
}

/** Deno's npm cache on this machine: DENO_DIR, else ~/.cache/deno, as `deno info` reports. */
async function hostNpmCache(): Promise<string> {
  const info = JSON.parse(await run(await denoBinary(), ["info", "--json"])) as {
    npmCache: string;
  };
  return join(info.npmCache, "registry.npmjs.org");
}

/** The npm packages main.ts needs, copied, and deno.json + deno.lock naming only those. */
async function copyNpmPackages(rootfs: string, roots: string[]): Promise<number> {
  const lock = JSON.parse(await Deno.readTextFile(join(REPO, "deno.lock")));
  const denoJson = JSON.parse(await Deno.readTextFile(join(REPO, "deno.json")));
  const from = await hostNpmCache();
  const to = join(rootfs, DENO_DIR, "npm", "registry.npmjs.org");
  const keys = npmClosure(lock.npm, roots);
  const trimmed = trimManifests(denoJson, lock, keys);
  const write = (name: string, value: unknown) =>
    Deno.writeTextFile(join(rootfs, APP_DIR, name), `${JSON.stringify(value, null, 2)}\n`);
  await write("deno.json", trimmed.config);
  await write("deno.lock", trimmed.lock);
  for (const key of keys) {
    const { name, version } = splitPackageKey(key);
    await copyTree(join(from, name, version), join(to, name, version), isWarnedMark).catch(
      (error) => {
        throw new Error(`Cannot copy npm package ${key} from ${from}: ${error.message}`);
      },
    );
    await Deno.copyFile(join(from, name, "registry.json"), join(to, name, "registry.json"));
  }
  return keys.length;
}

async function which(program: string): Promise<string> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").concat("/usr/sbin", "/sbin")) {
    const path = join(dir, program);
    if (await Deno.stat(path).then((info) => info.isFile, () => false)) return path;
  }
  throw new Error(`Cannot find ${program} on PATH (apt-get install iproute2)`);
}

/**
 * This Deno, or the one on PATH if this one's file is gone (`npm install -g deno` replaced it
 * while we ran: execPath then ends in " (deleted)").
 */
async function denoBinary(): Promise<string> {
  const path = Deno.execPath();
  return await Deno.stat(path).then((info) => info.isFile, () => false)
    ? path
    : await which("deno");
}

async function copyBinaries(rootfs: string): Promise<void> {
  const deno = await Deno.realPath(await denoBinary());
  const ip = await Deno.realPath(await which("ip"));
  // bridge: a cluster network's forwarding entries and neigh_suppress (vxlan_plumbing.ts).
  const bridge = await Deno.realPath(await which("bridge"));
  await copyInto(rootfs, deno, DENO_BINARY);
  await copyInto(rootfs, ip, "/usr/sbin/ip");
  await copyInto(rootfs, bridge, "/usr/sbin/bridge");
  for (const binary of [deno, ip, bridge]) {
    for (const library of await sharedLibraries(binary)) await copyInto(rootfs, library);
  }
}

/** Berth's --help from `app`: every static import loads, with --cached-only. */
function helpArgs(app: string): string[] {
  const flags = ["--allow-env", "--allow-read", "--cached-only", "--frozen"];
  return ["run", ...flags, `--config=${join(app, "deno.json")}`, join(app, "main.ts"), "--help"];
}

/**
 * Proves the rootfs' DENO_DIR complete without the network. As root, inside the rootfs itself
 * (as its root directory) with no network at all (a new network namespace): that also leaves Deno's transpile
 * and code caches, and its mark that it warned of protobufjs' build script, for the paths the
 * plugin runs from, so its first start is quicker and logs no warning. Otherwise from the host
 * with a dead proxy, and the caches that names host paths are dropped.
 */
async function checkOffline(rootfs: string): Promise<void> {
  const env = { DENO_DIR, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" };
  if (Deno.uid() === 0) {
    // Deno needs /proc; a private mount and PID namespace take it away with the process.
    const namespaces = ["--net", "--mount", "--pid", "--fork", "--mount-proc"];
    const inside = [`--root=${rootfs}`, `--wd=${APP_DIR}`, DENO_BINARY, ...helpArgs(APP_DIR)];
    await run("unshare", [...namespaces, ...inside], env);
    // The tools Berth runs start inside the rootfs too: their libraries came along.
    for (const tool of ["/usr/sbin/ip", "/usr/sbin/bridge"]) {
      await run("unshare", [...namespaces, `--root=${rootfs}`, tool, "-V"], env);
    }
    return;
  }
  const deno = await denoBinary();
  await run(deno, helpArgs(join(rootfs, APP_DIR)), {
    ...env,
    DENO_DIR: join(rootfs, DENO_DIR),
    ...NO_NETWORK,
  });
  for await (const entry of Deno.readDir(join(rootfs, DENO_DIR))) {
    if (entry.name === "npm") continue;
    await Deno.remove(join(rootfs, DENO_DIR, entry.name), { recursive: true });
  }
  await removeFiles(join(rootfs, DENO_DIR, "npm"), isWarnedMark);
}

/** What a build made, for the log and the tests. */
export type BuiltPlugin = { dir: string; files: number; packages: number; rootfsBytes: number };

/** Builds `out` (config.json + rootfs/), replacing whatever was there. */
export async function buildPlugin(out: string, version: string): Promise<BuiltPlugin> {
  const rootfs = join(out, "rootfs");
  await Deno.remove(out, { recursive: true }).catch(() => {});
  for (
    const dir of [PLUGIN_SOCKET_DIR, PROPAGATED_MOUNT, STATE_DIR, "/etc", "/tmp", "/dev", "/proc"]
  ) {
    await Deno.mkdir(join(rootfs, dir), { recursive: true });
  }
  await Deno.chmod(join(rootfs, "tmp"), 0o1777);
  const { files, npmRoots } = await moduleGraph();
  for (const file of files) {
    await copyInto(rootfs, file, join(APP_DIR, relative(REPO, file)));
  }
  const packages = await copyNpmPackages(rootfs, npmRoots);
  await copyBinaries(rootfs);
  await checkOffline(rootfs);
  await Deno.writeTextFile(
    join(out, "config.json"),
    `${JSON.stringify(pluginConfig(version), null, 2)}\n`,
  );
  const rootfsBytes = await treeBytes(rootfs);
  return { dir: out, files: files.length, packages, rootfsBytes };
}

async function gitVersion(): Promise<string> {
  return (await run("git", ["describe", "--always", "--dirty", "--tags"]).catch(() => "dev"))
    .trim();
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { out: { type: "string" }, version: { type: "string" }, help: { type: "boolean" } },
  });
  if (values.help) {
    say(HELP.trimEnd());
    Deno.exit(0);
  }
  try {
    const out = values.out ?? join(REPO, "build", "plugin");
    const built = await buildPlugin(out, values.version ?? await gitVersion());
    const size = (built.rootfsBytes / MIB).toFixed(1);
    say(`built ${out}: ${built.files} files, ${built.packages} npm packages, rootfs ${size} MiB`);
  } catch (error) {
    say(`[ERROR] build plugin: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
