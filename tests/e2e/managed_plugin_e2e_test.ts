// Berth as a managed (v2) plugin of a private dockerd: built by tools/build_plugin.ts, installed
// with `docker plugin create`, driven only through the docker CLI, checked on the host.

import assert from "node:assert/strict";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { type Dockerd, mountsUnder, requireOrSkip, startDockerd } from "./_dockerd.ts";
import { buildPlugin } from "../../tools/build_plugin.ts";
import { PROPAGATED_MOUNT } from "../../tools/plugin_config.ts";
import { exists } from "../helpers/exists.ts";

/** dockerd 20.10 keeps a plugin's exec root here whatever its --exec-root says. */
const PLUGINS_RUN_DIR = "/run/docker/plugins";
const PING_OK_REGEXP = /3 packets transmitted, 3 packets received/;
const PING = (address: string) => `ping -c 3 -A -w 10 ${address}`;

function log(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`${line}\n`));
}

async function ip(...args: string[]): Promise<string> {
  const out = await new Deno.Command("ip", { args, stdin: "null" }).output();
  return new TextDecoder().decode(out.stdout);
}

type HostLink = { ifname: string; master?: string };

/** The bridge of a Berth network (bthb + 11 characters of its ID) and the host veths on it. */
async function linksOf(bridge: string): Promise<string[]> {
  const links = JSON.parse(await ip("-json", "link", "show")) as HostLink[];
  return links.filter((l) => l.ifname === bridge || l.master === bridge).map((l) => l.ifname);
}

/** Live processes in the plugin's cgroup (runc names it after the plugin ID). */
function pluginProcesses(id: string): number[] {
  const pids = [];
  for (const { name } of Deno.readDirSync("/proc")) {
    try {
      if (Deno.readTextFileSync(`/proc/${name}/cgroup`).includes(id)) pids.push(Number(name));
    } catch { /* not a pid, or gone */ }
  }
  return pids;
}

/** Sends one Docker call to the plugin's socket; the parsed reply, or undefined if none came. */
async function call(socket: string, method: string): Promise<unknown> {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
  try {
    const response = await fetch(`http://plugin/${method}`, { method: "POST", body: "{}", client });
    return response.ok ? await response.json() : undefined;
  } catch {
    return undefined;
  } finally {
    client.close();
  }
}

/** Waits until another process than `old` serves the plugin socket; ms it took. */
async function waitForRestart(id: string, old: number, timeoutMs = 40_000): Promise<number> {
  const started = Date.now();
  const socket = join(PLUGINS_RUN_DIR, id, "berth.sock");
  while (Date.now() - started < timeoutMs) {
    const pids = pluginProcesses(id);
    if (pids.length > 0 && !pids.includes(old) && await call(socket, "VolumeDriver.Capabilities")) {
      return Date.now() - started;
    }
    await delay(100);
  }
  throw new Error(`dockerd did not start plugin ${id} again within ${timeoutMs} ms`);
}

async function shIn(d: Dockerd, args: string[], script: string): Promise<string> {
  const out = await d.docker([...args, "sh", "-c", script], { check: false });
  assert.equal(out.code, 0, `${script} in ${args.join(" ")} failed:\n${out.stdout}${out.stderr}`);
  return out.stdout;
}

async function addressOf(d: Dockerd, container: string): Promise<string> {
  const format = "{{.NetworkSettings.Networks.n1.IPAddress}}";
  return (await d.docker(["inspect", "--format", format, container])).stdout.trim();
}

async function volumeStatus(d: Dockerd, name: string): Promise<{ mounts: number }> {
  const out = await d.docker(["volume", "inspect", "--format", "{{json .Status}}", name]);
  return JSON.parse(out.stdout);
}

/** A /24 in 198.19.100.0–198.19.249.0: inside Berth's range, apart from other runs' pools. */
function randomSubnet(): string {
  return `198.19.${100 + crypto.getRandomValues(new Uint8Array(1))[0]! % 150}.0/24`;
}

const NAME = "Berth as a managed plugin keeps volumes and networks across disable -f and SIGKILL";
Deno.test({ name: NAME, ignore: requireOrSkip(NAME) }, async (t) => {
  const plugin = `berth-e2e-${crypto.randomUUID().slice(0, 8)}`;
  const driver = `${plugin}:latest`;
  const work = await Deno.makeTempDir({ prefix: "berth-e2e-managed-" });
  const stateDir = join(work, "state");
  const subnet = randomSubnet();
  let dockerd: Dockerd | undefined;
  let id = "";
  let bridge = "";
  async function step(name: string, fn: (d: Dockerd) => Promise<void>): Promise<void> {
    if (!await t.step(name, () => fn(dockerd!))) throw new Error(`Step failed: ${name}`);
  }
  const hostData = (...path: string[]) =>
    join(dockerd!.dataRoot, "plugins", id, "propagated-mount", ...path);
  try {
    await Deno.mkdir(stateDir);
    const built = await buildPlugin(join(work, "plugin"), "e2e");
    log(`rootfs ${(built.rootfsBytes / 2 ** 20).toFixed(1)} MiB, ${built.packages} npm packages`);
    // Both iproute2 tools Berth runs: bridge makes a cluster network's forwarding entries.
    for (const tool of ["ip", "bridge"]) {
      assert.ok(Deno.statSync(join(built.dir, "rootfs", "usr", "sbin", tool)).isFile, tool);
    }
    dockerd = await startDockerd({ log: (line) => log(`[dockerd] ${line}`) });
    const image = dockerd.image;

    await step("plugin create, set state.source and enable start Berth", async (d) => {
      await d.docker(["plugin", "create", plugin, built.dir], { timeoutMs: 180_000 });
      id = (await d.docker(["plugin", "inspect", "--format", "{{.Id}}", plugin])).stdout.trim();
      await d.docker(["plugin", "set", plugin, `state.source=${stateDir}`]);
      const started = Date.now();
      await d.docker(["plugin", "enable", plugin]);
      log(`docker plugin enable took ${Date.now() - started} ms`);
      assert.equal(pluginProcesses(id).length, 1, "one process in the plugin's cgroup");
      assert.ok(Deno.statSync(join(stateDir, "log")).isDirectory, "the log is in state.source");
      // dockerd logs a plugin's stdout at level info and its stderr at level error.
      const lines = d.logTail(200).split("\n").filter((line) => line.includes(`plugin=${id}`));
      assert.ok(
        lines.some((line) => /level=info msg="\[INFO\] berth: serving/.test(line)),
        `no INFO line at level info:\n${lines.join("\n")}`,
      );
      assert.deepEqual(lines.filter((line) => line.includes("level=error")), []);
    });

    await step(
      "a volume made with options is written by one container, read by another",
      async (d) => {
        await d.docker([
          "volume",
          "create",
          "-d",
          plugin,
          "-o",
          "mode=0750",
          "-o",
          "uid=1234",
          "data",
        ]);
        await shIn(
          d,
          ["run", "--rm", "--network", "none", "-v", "data:/d", image],
          "echo hi > /d/f",
        );
        const read = ["run", "--rm", "--network", "none", "-v", "data:/d", image];
        assert.equal(await shIn(d, read, "cat /d/f"), "hi\n");
        const volume = JSON.parse(
          (await d.docker(["volume", "inspect", "--format", "{{json .}}", "data"])).stdout,
        );
        assert.equal(volume.Driver, driver);
        assert.equal(volume.Mountpoint, `${PROPAGATED_MOUNT}/data/_data`);
        assert.deepEqual(volume.Options, { mode: "0750", uid: "1234" });
        // The data is on the host side of propagatedMount: what containers were given.
        const info = Deno.statSync(hostData("data", "_data"));
        assert.deepEqual([info.uid, (info.mode ?? 0) & 0o7777], [1234, 0o750]);
        assert.equal(Deno.readTextFileSync(hostData("data", "_data", "f")), "hi\n");
      },
    );

    await step("a network with Berth's IPAM: two containers ping each other", async (d) => {
      // dockerd 20.10 finds a managed plugin's network and IPAM drivers only by name:tag.
      const create = ["network", "create", "-d", driver, "--ipam-driver", driver];
      const net = (await d.docker([...create, "--subnet", subnet, "n1"])).stdout.trim();
      bridge = `bthb${net.slice(0, 11)}`;
      // Tagged apart from a Berth on the host whose state dir has the same path.
      const shown = await new Deno.Command("ip", {
        args: ["-j", "-d", "link", "show", bridge],
        stdout: "piped",
      }).output();
      const [link] = JSON.parse(new TextDecoder().decode(shown.stdout)) as { ifalias?: string }[];
      assert.equal(link?.ifalias, "berth:plugin:/var/lib/berth");
      await d.docker([
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "n1",
        "-v",
        "data:/d",
        image,
        "sleep",
        "1000",
      ]);
      await d.docker(["run", "-d", "--name", "c2", "--network", "n1", image, "sleep", "1000"]);
      const [a1, a2] = [await addressOf(d, "c1"), await addressOf(d, "c2")];
      assert.ok(a1.startsWith(subnet.slice(0, -4)) && a2.startsWith(subnet.slice(0, -4)), a1 + a2);
      assert.match(await shIn(d, ["exec", "c1"], PING(a2)), PING_OK_REGEXP);
      assert.equal((await linksOf(bridge)).length, 3, "the bridge and two host veths");
    });

    await step("disable is refused while volumes and networks use the plugin", async (d) => {
      const refused = await d.docker(["plugin", "disable", plugin], { check: false });
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /in use/);
    });

    await step(
      "disable -f, enable: volumes, mounts, networks and addresses are back",
      async (d) => {
        const before = [await addressOf(d, "c1"), await addressOf(d, "c2")];
        await d.docker(["plugin", "disable", "-f", plugin]);
        assert.deepEqual(pluginProcesses(id), [], "Berth stopped");
        await d.docker(["plugin", "enable", plugin]);
        assert.deepEqual((await volumeStatus(d, "data")).mounts, 1, "c1's mount still counted");
        assert.equal(await shIn(d, ["exec", "c1"], "cat /d/f"), "hi\n");
        assert.deepEqual([await addressOf(d, "c1"), await addressOf(d, "c2")], before);
        assert.match(await shIn(d, ["exec", "c1"], PING(before[1]!)), PING_OK_REGEXP);
        const c3 = ["run", "--rm", "--network", "n1", image];
        const mine = await shIn(d, c3, `ip -o -4 addr show eth0; ${PING(before[0]!)}`);
        assert.match(mine, PING_OK_REGEXP);
        assert.ok(!before.some((a) => mine.includes(` ${a}/`)), `address given twice: ${mine}`);
      },
    );

    await step("SIGKILL of Berth while c1 holds the volume: dockerd restarts it", async (d) => {
      const [old] = pluginProcesses(id);
      assert.ok(old, "Berth runs");
      Deno.kill(old, "SIGKILL");
      log(`plugin answered again ${await waitForRestart(id, old)} ms after SIGKILL`);
      assert.deepEqual((await volumeStatus(d, "data")).mounts, 1);
      const read = ["run", "--rm", "--network", "n1", "-v", "data:/d", image];
      assert.match(await shIn(d, read, `cat /d/f; ${PING(await addressOf(d, "c2"))}`), /^hi\n/);
    });

    await step("dockerd never sends Plugin.Activate to a managed plugin", async () => {
      const admin = join(PLUGINS_RUN_DIR, id, "admin.sock");
      const client = Deno.createHttpClient({ proxy: { transport: "unix", path: admin } });
      const metrics = await (await fetch("http://admin/metrics", { client })).text();
      client.close();
      assert.match(metrics, /method="VolumeDriver.Mount"/);
      assert.doesNotMatch(metrics, /Plugin\.Activate/);
    });

    await step("everything removed, plugin rm: no link, directory, mount or process", async (d) => {
      await d.docker(["rm", "-f", "c1", "c2"]);
      await d.docker(["network", "rm", "n1"]);
      await d.docker(["volume", "rm", "data"]);
      assert.ok(!exists(hostData("data")), "volume data removed");
      await d.docker(["plugin", "disable", plugin]);
      await d.docker(["plugin", "rm", plugin]);
      assertNothingLeft(d, id);
      assert.deepEqual(await linksOf(bridge), []);
      id = "";
    });
  } finally {
    if (dockerd && id) await removeAll(dockerd, plugin);
    await dockerd?.stop();
    if (bridge) { for (const link of await linksOf(bridge)) await ip("link", "del", link); }
    if (id) await removeRunDir(join(PLUGINS_RUN_DIR, id));
    await Deno.remove(work, { recursive: true });
  }
});

function assertNothingLeft(d: Dockerd, id: string): void {
  assert.deepEqual(pluginProcesses(id), [], "a process of the plugin is left");
  for (const dir of [join(PLUGINS_RUN_DIR, id), join(d.dataRoot, "plugins", id)]) {
    assert.ok(!exists(dir), `${dir} is left`);
    assert.deepEqual(mountsUnder(dir), [], `mounts under ${dir} are left`);
  }
  for (const tree of Deno.readDirSync("/sys/fs/cgroup")) {
    assert.ok(!exists(join("/sys/fs/cgroup", tree.name, id)), `cgroup ${tree.name}/${id} is left`);
  }
}

async function removeRunDir(dir: string): Promise<void> {
  for (const point of mountsUnder(dir).reverse()) {
    await new Deno.Command("umount", { args: ["-l", point] }).output();
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

/** After a failed step: what the test made, gone, in the order dockerd allows. */
async function removeAll(d: Dockerd, plugin: string): Promise<void> {
  const quiet = { check: false, timeoutMs: 30_000 };
  await d.docker(["rm", "-f", "c1", "c2"], quiet);
  await d.docker(["network", "rm", "n1"], quiet);
  await d.docker(["volume", "rm", "-f", "data"], quiet);
  await d.docker(["plugin", "disable", "-f", plugin], quiet);
  await d.docker(["plugin", "rm", "-f", plugin], quiet);
}
