// Berth's managed plugin through a registry: pushed by one private dockerd to Debian's
// docker-registry on loopback, installed by a second one, a volume written, the plugin upgraded
// to a second version, and the volume read back.

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

const NAME = "Berth's managed plugin is pushed, installed by another dockerd, and upgraded";
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
    const first = await buildPlugin(join(work, "plugin-1"), "e2e-1");
    const second = await buildPlugin(join(work, "plugin-2"), "e2e-2");
    await Deno.mkdir(join(work, "registry"));
    registry = await startRegistry(join(work, "registry"));
    reference = `${registry.address}/berth:e2e-${crypto.randomUUID().slice(0, 8)}`;
    const upgrade = `${reference}-2`;

    dockerd = await startDockerd({ log: (line) => log(`[dockerd 1] ${line}`) });
    await step("plugin create and push of two versions to the loopback registry", async (d) => {
      for (const [name, built] of [[reference, first], [upgrade, second]] as const) {
        await d.docker(["plugin", "create", name, built.dir], { timeoutMs: 180_000 });
        const started = Date.now();
        await d.docker(["plugin", "push", name], { timeoutMs: 180_000 });
        log(`docker plugin push ${name} took ${Date.now() - started} ms`);
        await d.docker(["plugin", "rm", name]);
      }
      const stored = await treeBytes(join(work, "registry", "data"));
      log(`the registry holds ${(stored / 2 ** 20).toFixed(1)} MiB`);
    });
    await dockerd.stop();

    const stateDir = join(work, "state");
    await Deno.mkdir(stateDir);
    dockerd = await startDockerd({ log: (line) => log(`[dockerd 2] ${line}`) });
    const inspect = (d: Dockerd, format: string) =>
      d.docker(["plugin", "inspect", "--format", format, reference]).then((r) => r.stdout.trim());
    const run = ["run", "--rm", "--network", "none", "-v", "data:/d"];
    await step("plugin install on a second dockerd, then a volume written", async (d) => {
      const install = ["plugin", "install", "--grant-all-permissions", reference];
      const started = Date.now();
      await d.docker([...install, `state.source=${stateDir}`], { timeoutMs: 180_000 });
      log(`docker plugin install took ${Date.now() - started} ms`);
      assert.equal(await inspect(d, "{{.Enabled}}"), "true");
      await d.docker(["volume", "create", "-d", reference, "data"]);
      await d.docker([...run, d.image, "sh", "-c", "echo hi > /d/f"]);
      assert.ok(Deno.statSync(join(stateDir, "log")).isDirectory, "the log went to state.source");
    });

    await step(
      "plugin upgrade, state.source set again: the volume and its data are back",
      async (d) => {
        await d.docker(["plugin", "disable", "-f", reference]);
        // Another tag is "images do not match" to the CLI: it asks y/N, and on stdin's EOF exits 0
        // having done nothing.
        const flags = ["--grant-all-permissions", "--skip-remote-check"];
        const args = ["plugin", "upgrade", ...flags, reference, upgrade];
        await d.docker(args, { timeoutMs: 180_000 });
        // dockerd 20.10 gives an upgraded plugin the new version's default settings: state.source
        // is /var/lib/berth again until set once more.
        const source = await inspect(d, "{{range .Settings.Mounts}}{{.Source}}{{end}}");
        log(`state.source after upgrade: ${source}`);
        await d.docker(["plugin", "set", reference, `state.source=${stateDir}`]);
        await d.docker(["plugin", "enable", reference]);
        assert.match(await inspect(d, "{{.Config.Description}}"), /^Berth e2e-2:/);
        assert.equal((await d.docker([...run, d.image, "cat", "/d/f"])).stdout, "hi\n");
        await d.docker(["volume", "rm", "data"]);
        await d.docker(["plugin", "disable", reference]);
        await d.docker(["plugin", "rm", reference]);
      },
    );
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
