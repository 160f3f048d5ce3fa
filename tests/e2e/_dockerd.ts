// A private dockerd for e2e tests: its own roots, socket, containerd namespace, cgroup parent and
// busybox image, all under one temp dir that stop() removes. Test-only; imports nothing from src/.

import { basename, join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { onPath, skipUnless } from "../helpers/skip.ts";

export const BUSYBOX_PATH = "/bin/busybox";
const IMAGE = "berth-bb:latest";
const MAX_LOG_CHARS = 1 << 20;
const REQUIRED_BINARIES = ["dockerd", "docker", "containerd", "runc", "tar", "umount"];
// No bridge, no iptables, no forwarding: nothing a test container does can leave the host.
const FIXED_FLAGS = ("--storage-driver=vfs --iptables=false --ip6tables=false --ip-forward=false " +
  "--ip-masq=false --bridge=none --shutdown-timeout=3 --log-level=info").split(" ");

export type DockerResult = { code: number; stdout: string; stderr: string };
export type DockerdOptions = {
  log?: (line: string) => void;
  /**
   * A directory this dockerd sees as /run/docker/plugins, and no other: it runs in a mount
   * namespace of its own (host mounts still propagate in) with the directory bound there, so two
   * daemons can each find a different socket under one plugin name.
   */
  pluginDir?: string;
  /** More dockerd flags, after the harness's own (e.g. the deprecated --cluster-store). */
  extraFlags?: string[];
  /**
   * A network namespace (`ip netns add`) to run this dockerd in, a "host" of its own; the plugins
   * it talks to must create their links there. Needs `pluginDir`: the daemon gets its own mount
   * namespace either way.
   */
  netns?: string;
};
const SOCKETS_PATH = "/run/docker/plugins";
export type DockerOptions = { check?: boolean; stdin?: string; timeoutMs?: number };

// The image holds nothing but busybox, so busybox must not need a dynamic loader (PT_INTERP).
function isStaticElf(path: string): boolean {
  try {
    const bytes = Deno.readFileSync(path);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (view.getUint32(0) !== 0x7f454c46 || bytes[4] !== 2) return false;
    const phoff = view.getUint32(0x20, true); // e_phoff is 64-bit; its high half is 0 here
    const [size, count] = [view.getUint16(0x36, true), view.getUint16(0x38, true)];
    for (let i = 0; i < count; i++) if (view.getUint32(phoff + i * size, true) === 3) return false;
    return true;
  } catch {
    return false;
  }
}

/** Whether this machine can run a private dockerd: Linux, root, the binaries, a static busybox. */
export function dockerdAvailable(): { ok: boolean; why: string } {
  if (Deno.build.os !== "linux") return { ok: false, why: "needs Linux" };
  if (Deno.uid() !== 0) return { ok: false, why: "needs root" };
  const missing = REQUIRED_BINARIES.filter((name) => !onPath(name));
  if (missing.length > 0) return { ok: false, why: `not on PATH: ${missing.join(", ")}` };
  if (!isStaticElf(BUSYBOX_PATH)) {
    return { ok: false, why: `${BUSYBOX_PATH} missing or not static (install busybox-static)` };
  }
  return { ok: true, why: "root, dockerd and a static busybox are present" };
}

/**
 * The `ignore` value for a Deno.test that needs dockerd: true, with the reason on stderr, when the
 * machine cannot run one. Under CI=true always false, so a missing dockerd fails loudly there.
 */
export function requireOrSkip(testName: string): boolean {
  const { ok, why } = dockerdAvailable();
  return skipUnless(testName, ok ? null : why);
}

async function run(cmd: string, args: string[], opts: DockerOptions = {}): Promise<DockerResult> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000),
  }).spawn();
  if (opts.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(opts.stdin));
    await writer.close();
  }
  const out = await child.output();
  const [stdout, stderr] = [out.stdout, out.stderr].map((b) => new TextDecoder().decode(b));
  return { code: out.code, stdout: stdout ?? "", stderr: stderr ?? "" };
}

async function buildRootfsTar(dir: string): Promise<string> {
  const root = join(dir, "rootfs");
  for (const sub of ["bin", "etc", "root", "tmp"]) {
    await Deno.mkdir(join(root, sub), { recursive: true });
  }
  await Deno.chmod(join(root, "tmp"), 0o1777);
  await Deno.copyFile(BUSYBOX_PATH, join(root, "bin", "busybox"));
  const applets = (await run(BUSYBOX_PATH, ["--list"])).stdout.split("\n");
  for (const applet of applets.filter((a) => a && a !== "busybox")) {
    await Deno.symlink("busybox", join(root, "bin", applet));
  }
  await Deno.writeTextFile(join(root, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  await Deno.writeTextFile(join(root, "etc", "group"), "root:x:0:\n");
  const tar = join(dir, "rootfs.tar");
  const out = await run("tar", ["-C", root, "--numeric-owner", "-cf", tar, "."]);
  if (out.code !== 0) throw new Error(`Failed to tar busybox rootfs: ${out.stderr}`);
  return tar;
}

function unescapeOctal(_: string, octal: string): string {
  return String.fromCharCode(parseInt(octal, 8));
}

/** Mount points at or under `dir`, from /proc/self/mountinfo (field 5, octal-escaped). */
export function mountsUnder(dir: string): string[] {
  return Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
    .map((line) => (line.split(" ")[4] ?? "").replace(/\\([0-7]{3})/g, unescapeOctal))
    .filter((point) => point === dir || point.startsWith(dir + "/"));
}

/** Live (not zombie) processes whose command line names one of `marks`, and their descendants. */
export function processesMarkedBy(marks: string[]): { pid: number; cmdline: string }[] {
  const all = [];
  for (const { name } of Deno.readDirSync("/proc")) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${name}/stat`);
      const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const cmdline = Deno.readTextFileSync(`/proc/${name}/cmdline`).replaceAll("\0", " ");
      if (state !== "Z") all.push({ pid: Number(name), ppid: Number(ppid), cmdline });
    } catch { /* not a pid, or exited while we looked */ }
  }
  const pids = new Set(
    all.filter((p) => marks.some((m) => p.cmdline.includes(m))).map((p) => p.pid),
  );
  for (let size = -1; size !== pids.size;) {
    size = pids.size;
    for (const p of all) if (pids.has(p.ppid)) pids.add(p.pid);
  }
  return all.filter((p) => pids.has(p.pid)).map(({ pid, cmdline }) => ({ pid, cmdline }));
}

/**
 * The socket of a containerd runc-v2 shim, from its command line: containerd 1.6 names it
 * /run/containerd/s/<sha256 of address/namespace/id> for every containerd on the host, and only a
 * shim that exits cleanly removes it.
 */
export async function shimSocketOf(cmdline: string): Promise<string | undefined> {
  const match = cmdline.match(/-namespace (\S+) -id (\S+) -address (\S+)/);
  if (!match) return undefined;
  const path = new TextEncoder().encode(`${match[3]}/${match[1]}/${match[2]}`);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", path));
  return `/run/containerd/s/${Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

// cgroup v1 has one tree per controller (v2, or hybrid "unified", one more); runc makes
// <parent>/<container id> in each and leaves it when the container dies with its shim.
function removeCgroups(parent: string): void {
  for (const tree of ["", ...Array.from(Deno.readDirSync("/sys/fs/cgroup"), (e) => e.name)]) {
    const dir = join("/sys/fs/cgroup", tree, parent);
    try {
      for (const child of Deno.readDirSync(dir)) {
        if (child.isDirectory) Deno.removeSync(join(dir, child.name));
      }
      Deno.removeSync(dir);
    } catch { /* not in this tree */ }
  }
}

/** A running private dockerd from startDockerd(); `await using` it, or call stop(). */
export class Dockerd implements AsyncDisposable {
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly socket: string;
  readonly image = IMAGE;
  /** Also its containerd namespace. */
  readonly cgroupParent: string;
  pid = -1;
  readonly #log: (line: string) => void;
  #logText = "";
  #child: Deno.ChildProcess | undefined;
  #pump: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(
    readonly dir: string,
    log: (line: string) => void,
    readonly pluginDir?: string,
    readonly extraFlags: string[] = [],
    readonly netns?: string,
  ) {
    this.dataRoot = join(dir, "data");
    this.execRoot = join(dir, "exec");
    this.socket = join(dir, "docker.sock");
    this.cgroupParent = `berth-e2e-${basename(dir).replace(/^berth-dockerd-/, "")}`;
    this.#log = log;
  }

  async start(): Promise<void> {
    // Not the host's /etc/docker/daemon.json: a "data-root" or "hosts" there would clash with flags.
    await Deno.writeTextFile(join(this.dir, "daemon.json"), "{}\n");
    await Deno.mkdir(join(this.dir, "tmp"));
    const flags = [
      ...FIXED_FLAGS,
      ...["--data-root", this.dataRoot, "--exec-root", this.execRoot],
      ...["-H", `unix://${this.socket}`, "--pidfile", join(this.dir, "dockerd.pid")],
      ...["--config-file", join(this.dir, "daemon.json"), "--cgroup-parent", this.cgroupParent],
      // dockerd uses a system containerd when /run/containerd/containerd.sock exists, else starts
      // its own under exec-root; private namespaces keep two harnesses apart in either case.
      ...["--containerd-namespace", this.cgroupParent],
      ...["--containerd-plugins-namespace", `${this.cgroupParent}-plugins`],
      ...this.extraFlags,
    ];
    if (this.pluginDir !== undefined) await Deno.mkdir(SOCKETS_PATH, { recursive: true });
    // unshare and sh (and nsenter) all exec: the child's pid is dockerd's. Its containerd (and
    // every shim) inherits the namespace, so the mounts they make die with it. nsenter, not
    // `ip netns exec`: that mounts a fresh /sys, without the cgroup trees runc needs.
    const [command, ...args] = this.pluginDir === undefined ? ["dockerd", ...flags] : [
      ...(this.netns === undefined ? [] : ["nsenter", `--net=/run/netns/${this.netns}`, "--"]),
      ...["unshare", "--mount", "--propagation", "slave", "--", "sh", "-c"],
      `mount --bind "$0" ${SOCKETS_PATH} && exec dockerd "$@"`,
      this.pluginDir,
      ...flags,
    ];
    this.#child = new Deno.Command(command!, {
      args,
      // containerd inherits it: its stack dump, when dockerd kills it, goes to $TMPDIR, not /tmp.
      env: { TMPDIR: join(this.dir, "tmp") },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.pid = this.#child.pid;
    this.#pump = this.#collect(this.#child.stderr);
    this.#log(`dockerd pid ${this.pid} in ${this.dir}`);
    // allSettled, not all: a failed tar must not leave the readiness poll running on its own.
    const [tar, ready] = await Promise.allSettled([
      buildRootfsTar(this.dir),
      this.#waitReady(30_000),
    ]);
    if (ready.status === "rejected") throw ready.reason;
    if (tar.status === "rejected") throw tar.reason;
    await this.docker(["import", "--change", 'CMD ["sh"]', tar.value, IMAGE]);
  }

  async #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    // A TextDecoder rather than a TextDecoderStream: with the DOM library in the type check (the
    // browser tests), the stream's writable side no longer types as Uint8Array.
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      this.#logText = (this.#logText + decoder.decode(chunk, { stream: true })).slice(
        -MAX_LOG_CHARS,
      );
    }
  }

  async #waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exited: Deno.CommandStatus | undefined;
    this.#child?.status.then((s) => exited = s);
    while (Date.now() < deadline && !exited) {
      const version = ["version", "--format", "{{.Server.Version}}"];
      const probe = await this.docker(version, { check: false, timeoutMs: 5_000 });
      if (probe.code === 0) return this.#log(`dockerd ${probe.stdout.trim()} is ready`);
      await delay(100);
    }
    const why = exited ? `exited with code ${exited.code}` : `did not answer in ${timeoutMs} ms`;
    throw new Error(`Failed to start dockerd: ${why}; log tail:\n${this.logTail(40)}`);
  }

  async docker(args: string[], opts: DockerOptions = {}): Promise<DockerResult> {
    // -H beats DOCKER_HOST and any context; an empty config dir keeps the user's config out.
    const global = ["--config", join(this.dir, "cli"), "-H", `unix://${this.socket}`];
    const out = await run("docker", [...global, ...args], opts);
    if (out.code !== 0 && (opts.check ?? true)) {
      const { code, stdout, stderr } = out;
      throw new Error(
        `docker ${args.join(" ")} exited ${code}\nstdout: ${stdout}\nstderr: ${stderr}`,
      );
    }
    return out;
  }

  logTail(n = 50): string {
    return this.#logText.trimEnd().split("\n").slice(-n).join("\n");
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#child) {
      // Running containers would hold shutdown for their stop timeout; remove them first.
      const ps = await this.docker(["ps", "-aq"], { check: false, timeoutMs: 10_000 });
      const ids = ps.stdout.split("\n").filter(Boolean);
      if (ids.length > 0) {
        await this.docker(["rm", "-f", ...ids], { check: false, timeoutMs: 20_000 });
      }
      const child = this.#child;
      const timer = setTimeout(() => {
        this.#log("dockerd ignored SIGTERM for 20 s; SIGKILL");
        child.kill("SIGKILL");
      }, 20_000);
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
      await child.status.finally(() => clearTimeout(timer));
    }
    await this.#killLeftovers();
    await this.#pump.catch(() => {});
    for (const point of mountsUnder(this.dir).reverse()) {
      this.#log(`unmounting leftover ${point}`);
      await run("umount", ["-l", point]);
    }
    removeCgroups(this.cgroupParent);
    await Deno.remove(this.dir, { recursive: true });
  }

  // A clean shutdown leaves nothing; after a SIGKILL of dockerd its shims and containers live on
  // (its containerd gets a parent-death signal, but is matched here too).
  async #killLeftovers(): Promise<void> {
    const marks = [this.dir + "/", `-namespace ${this.cgroupParent} `];
    const sockets = new Set<string>();
    for (let attempt = 0; attempt < 50; attempt++) {
      const leftovers = processesMarkedBy(marks);
      if (leftovers.length === 0) {
        for (const socket of sockets) await Deno.remove(socket).catch(() => {});
        return;
      }
      for (const { pid, cmdline } of leftovers) {
        this.#log(`killing leftover pid ${pid}: ${cmdline.slice(0, 60)}`);
        const socket = await shimSocketOf(cmdline);
        if (socket) sockets.add(socket);
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      await delay(100);
    }
    throw new Error(`Failed to kill processes left by dockerd in ${this.dir}`);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** Starts a private dockerd with a busybox image `berth-bb:latest`; throws with its log tail. */
export async function startDockerd(options: DockerdOptions = {}): Promise<Dockerd> {
  const { ok, why } = dockerdAvailable();
  if (!ok) throw new Error(`Cannot start dockerd: ${why}`);
  if (options.netns !== undefined && options.pluginDir === undefined) {
    throw new Error("Cannot start dockerd in a netns without a pluginDir");
  }
  const dir = await Deno.makeTempDir({ prefix: "berth-dockerd-" });
  const dockerd = new Dockerd(
    dir,
    options.log ?? (() => {}),
    options.pluginDir,
    options.extraFlags,
    options.netns,
  );
  try {
    await dockerd.start();
    return dockerd;
  } catch (error) {
    await dockerd.stop().catch(() => {});
    throw error;
  }
}
