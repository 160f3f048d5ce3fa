// Berth's managed plugin through a registry: pushed by one private dockerd to Debian's
// docker-registry on loopback, installed by a second one, then a volume made and removed.

import assert from "node:assert/strict";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { type Dockerd, requireOrSkip, startDockerd } from "./_dockerd.ts";
import { onPath, skipUnless } from "../helpers/skip.ts";
import { buildPlugin } from "../../tools/build_plugin.ts";
import { treeBytes } from "../../tools/_rootfs.ts";

const REGISTRY = "docker-registry";

function log(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`${line}\n`));
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

type Registry = { address: string; child: Deno.ChildProcess };

/** docker-registry on 127.0.0.1 (dockerd allows plain HTTP there), storing under `dir`. */
async function startRegistry(dir: string): Promise<Registry> {
  const address = `127.0.0.1:${freePort()}`;
  const config = join(dir, "config.yml");
  await Deno.writeTextFile(
    config,
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${
      join(dir, "data")
    }\nhttp:\n  addr: ${address}\n`,
  );
  const child = new Deno.Command(REGISTRY, {
    args: ["serve", config],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let attempt = 0; attempt < 100; attempt++) {
    const ok = await fetch(`http://${address}/v2/`).then(async (r) => {
      await r.body?.cancel();
      return r.ok;
    }, () => false);
    if (ok) return { address, child };
    await delay(100);
  }
  child.kill("SIGKILL");
  await child.status;
  throw new Error(`docker-registry did not answer on ${address}`);
}

const NAME = "Berth's managed plugin is pushed to a registry and installed by another dockerd";
Deno.test({
  name: NAME,
  ignore: requireOrSkip(NAME) ||
    skipUnless(NAME, onPath(REGISTRY) ? null : `${REGISTRY} missing (apt-get install ${REGISTRY})`),
}, async (t) => {
  const work = await Deno.makeTempDir({ prefix: "berth-e2e-dist-" });
  let registry: Registry | undefined;
  let dockerd: Dockerd | undefined;
  let reference = "";
  async function step(name: string, fn: (d: Dockerd) => Promise<void>): Promise<void> {
    if (!await t.step(name, () => fn(dockerd!))) throw new Error(`Step failed: ${name}`);
  }
  try {
    const built = await buildPlugin(join(work, "plugin"), "e2e");
    await Deno.mkdir(join(work, "registry"));
    registry = await startRegistry(join(work, "registry"));
    reference = `${registry.address}/berth:e2e-${crypto.randomUUID().slice(0, 8)}`;

    dockerd = await startDockerd({ log: (line) => log(`[dockerd 1] ${line}`) });
    await step("plugin create and push to the loopback registry", async (d) => {
      await d.docker(["plugin", "create", reference, built.dir], { timeoutMs: 180_000 });
      const started = Date.now();
      await d.docker(["plugin", "push", reference], { timeoutMs: 180_000 });
      const stored = await treeBytes(join(work, "registry", "data"));
      log(`docker plugin push took ${Date.now() - started} ms; the registry holds ${stored} bytes`);
      await d.docker(["plugin", "rm", reference]);
    });
    await dockerd.stop();

    const stateDir = join(work, "state");
    await Deno.mkdir(stateDir);
    dockerd = await startDockerd({ log: (line) => log(`[dockerd 2] ${line}`) });
    await step("plugin install on a second dockerd, then a volume round trip", async (d) => {
      const install = ["plugin", "install", "--grant-all-permissions", reference];
      const started = Date.now();
      await d.docker([...install, `state.source=${stateDir}`], { timeoutMs: 180_000 });
      log(`docker plugin install took ${Date.now() - started} ms`);
      const enabled = await d.docker(["plugin", "inspect", "--format", "{{.Enabled}}", reference]);
      assert.equal(enabled.stdout.trim(), "true");
      await d.docker(["volume", "create", "-d", reference, "data"]);
      const run = ["run", "--rm", "--network", "none", "-v", "data:/d", d.image, "sh", "-c"];
      await d.docker([...run, "echo hi > /d/f"]);
      assert.equal((await d.docker([...run, "cat /d/f"])).stdout, "hi\n");
      await d.docker(["volume", "rm", "data"]);
      await d.docker(["plugin", "disable", reference]);
      await d.docker(["plugin", "rm", reference]);
      assert.ok(Deno.statSync(join(stateDir, "log")).isDirectory, "the log went to state.source");
    });
  } finally {
    // A plugin left by a failed step: dockerd would stop it but keep its exec root.
    if (dockerd && reference) {
      const quiet = { check: false, timeoutMs: 30_000 };
      await dockerd.docker(["volume", "rm", "-f", "data"], quiet);
      await dockerd.docker(["plugin", "rm", "-f", reference], quiet);
    }
    await dockerd?.stop();
    if (registry) {
      registry.child.kill("SIGTERM");
      await registry.child.status;
    }
    await Deno.remove(work, { recursive: true });
  }
});
