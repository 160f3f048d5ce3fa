// The volume user story end to end: the real `main.ts serve` as a legacy plugin of a private
// dockerd (tests/e2e/_dockerd.ts), driven only through the docker CLI and checked on the host.

import assert from "node:assert/strict";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { type Dockerd, requireOrSkip, startDockerd } from "./_dockerd.ts";
import { exists } from "../helpers/exists.ts";

const MAIN_TS = fileURLToPath(new URL("../../main.ts", import.meta.url));
const PLUGIN_DIR = "/run/docker/plugins";
const UNMOUNT_ERROR_REGEXP = /error unmounting volume|failed to umount/i;

function log(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`${line}\n`));
}

type Berth = { child: Deno.ChildProcess; stderr: () => string; closed: Promise<void> };

function spawnBerth(name: string, stateDir: string): Berth {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN_TS, "serve", "--name", name, "--state-dir", stateDir],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const closed = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      for (const line of chunk.trimEnd().split("\n")) log(`[berth ${child.pid}] ${line}`);
    }
  })();
  return { child, stderr: () => text, closed };
}

// A stale socket file survives a SIGKILL, so "the file exists" is not "Berth is up": ask it.
async function activates(socket: string): Promise<boolean> {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
  try {
    const response = await fetch("http://plugin/Plugin.Activate", { method: "POST", client });
    const body = await response.json();
    return response.ok && Array.isArray(body?.Implements) &&
      body.Implements.includes("VolumeDriver");
  } catch {
    return false;
  } finally {
    client.close();
  }
}

async function waitUntilServing(berth: Berth, socket: string, timeoutMs = 30_000): Promise<void> {
  let exited: Deno.CommandStatus | undefined;
  berth.child.status.then((status) => exited = status);
  const deadline = Date.now() + timeoutMs;
  while (!exited && Date.now() < deadline) {
    const isSocket = await Deno.lstat(socket).then((s) => s.isSocket, () => false);
    if (isSocket && await activates(socket)) return;
    await delay(50);
  }
  const why = exited ? `exited with code ${exited.code}` : `did not serve ${socket} in time`;
  throw new Error(`Berth ${why}; its stderr:\n${berth.stderr()}`);
}

async function startBerth(name: string, stateDir: string, socket: string): Promise<Berth> {
  const berth = spawnBerth(name, stateDir);
  try {
    await waitUntilServing(berth, socket);
    return berth;
  } catch (error) {
    await killBerth(berth, "SIGKILL");
    throw error;
  }
}

async function killBerth(berth: Berth, signal: Deno.Signal): Promise<Deno.CommandStatus> {
  try {
    berth.child.kill(signal);
  } catch { /* already exited */ }
  const status = await berth.child.status;
  await berth.closed;
  return status;
}

function unmountErrors(dockerd: Dockerd): string[] {
  return dockerd.logTail(5000).split("\n").filter((line) => UNMOUNT_ERROR_REGEXP.test(line));
}

async function volumeNames(dockerd: Dockerd, driver: string): Promise<string[]> {
  const out = await dockerd.docker(["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]);
  return out.stdout.split("\n").filter((line) => line.startsWith(`${driver} `))
    .map((line) => line.slice(driver.length + 1));
}

const NAME = "berth serve gives a real dockerd volumes that survive kill -9 of the plugin";
Deno.test({ name: NAME, ignore: requireOrSkip(NAME) }, async (t) => {
  const plugin = `berth-e2e-${crypto.randomUUID().slice(0, 8)}`;
  const socket = join(PLUGIN_DIR, `${plugin}.sock`);
  const stateDir = await Deno.makeTempDir({ prefix: "berth-e2e-state-" });
  const volumes = join(stateDir, "volumes");
  let dockerd: Dockerd | undefined;
  let berth: Berth | undefined;
  async function step(name: string, fn: (d: Dockerd) => Promise<void>): Promise<void> {
    if (!await t.step(name, () => fn(dockerd!))) throw new Error(`Step failed: ${name}`);
  }
  try {
    await Deno.mkdir(PLUGIN_DIR, { recursive: true });
    dockerd = await startDockerd({ log: (line) => log(`[dockerd] ${line}`) });
    berth = await startBerth(plugin, stateDir, socket);
    const image = dockerd.image;

    await step("volume create, ls and inspect show the volume with our driver", async (d) => {
      assert.equal((await d.docker(["volume", "create", "-d", plugin, "data"])).stdout, "data\n");
      assert.deepEqual(await volumeNames(d, plugin), ["data"]);
      const inspect = await d.docker(["volume", "inspect", "--format", "{{json .}}", "data"]);
      const volume = JSON.parse(inspect.stdout);
      assert.equal(volume.Driver, plugin);
      assert.equal(typeof volume.CreatedAt, "string");
      assert.notEqual(volume.CreatedAt, "0001-01-01T00:00:00Z");
      assert.ok(!Number.isNaN(Date.parse(volume.CreatedAt)), `CreatedAt ${volume.CreatedAt}`);
      assert.ok(volume.Mountpoint.endsWith("/volumes/data/_data"), volume.Mountpoint);
    });

    await step(
      "a file written by one container is read by the next and is on the host",
      async (d) => {
        const run = ["run", "--rm", "--network", "none", "-v", "data:/d", image, "sh", "-c"];
        await d.docker([...run, "echo hi > /d/f"]);
        assert.equal((await d.docker([...run, "cat /d/f"])).stdout, "hi\n");
        assert.equal(await Deno.readTextFile(join(volumes, "data", "_data", "f")), "hi\n");
      },
    );

    await step(
      "uid, gid and mode options shape _data; an unknown size option is refused",
      async (d) => {
        const owned = ["-o", "uid=1234", "-o", "gid=1234", "-o", "mode=0750", "owned"];
        await d.docker(["volume", "create", "-d", plugin, ...owned]);
        const info = await Deno.stat(join(volumes, "owned", "_data"));
        assert.deepEqual([info.uid, info.gid, (info.mode ?? 0) & 0o7777], [1234, 1234, 0o750]);
        const bad = await d.docker(["volume", "create", "-d", plugin, "-o", "size=1G", "bad"], {
          check: false,
        });
        assert.notEqual(bad.code, 0, `size=1G accepted: ${bad.stdout}`);
        assert.match(bad.stderr, /size/);
        assert.deepEqual((await volumeNames(d, plugin)).sort(), ["data", "owned"]);
        assert.ok(!exists(join(volumes, "bad")), "a refused volume leaves no directory");
      },
    );

    await step(
      "after kill -9 and restart the mount is still counted and ends cleanly",
      async (d) => {
        const holder = ["--name", "holder", "--network", "none", "-v", "data:/d"];
        await d.docker(["run", "-d", ...holder, image, "sleep", "1000"]);
        const killed = await killBerth(berth!, "SIGKILL");
        assert.equal(killed.signal, "SIGKILL");
        berth = await startBerth(plugin, stateDir, socket);
        await d.docker(["volume", "inspect", "data"]);
        const refused = await d.docker(["volume", "rm", "data"], { check: false });
        assert.notEqual(refused.code, 0, "volume rm of a mounted volume succeeded");
        assert.match(refused.stderr, /volume is in use/);
        await d.docker(["stop", "-t", "1", "holder"]);
        // Read after rm too: dockerd may finish a container's cleanup just after stop returns.
        await d.docker(["rm", "holder"]);
        assert.deepEqual(unmountErrors(d), [], "dockerd failed to unmount the volume");
        await d.docker(["volume", "rm", "data"]);
        assert.ok(!exists(join(volumes, "data")), "volume dir removed");
        assert.deepEqual(await volumeNames(d, plugin), ["owned"]);
        await d.docker(["volume", "rm", "owned"]);
        assert.deepEqual(await volumeNames(d, plugin), []);
      },
    );

    await step("SIGTERM stops Berth with exit code 0 and removes its socket", async () => {
      const status = await killBerth(berth!, "SIGTERM");
      berth = undefined;
      assert.equal(status.code, 0, "exit code");
      assert.ok(!exists(socket), `${socket} left behind`);
    });
  } finally {
    // dockerd first: it removes leftover containers while Berth can still answer their Unmount.
    await dockerd?.stop();
    if (berth) await killBerth(berth, "SIGKILL");
    await Deno.remove(socket).catch(() => {});
    await Deno.remove(stateDir, { recursive: true });
  }
});
