// The README as a newcomer meets it: its `sh` blocks run from top to bottom, as written, against a
// private dockerd. `sh background` blocks keep running (Berth itself), `sh stopped` blocks run
// once those are stopped with SIGTERM, `sh not-tested` blocks are left out (the test command
// itself, and what needs systemd as the init). The plugin is named `berth`, as the README has it:
// its sockets are the host's /run/docker/plugins/berth.sock and /run/berth/berth.sock, so the test
// refuses to run while another Berth answers there. Its state goes to a temp BERTH_STATE_DIR, and
// `npm install -g` to a temp prefix.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { tempDir } from "../helpers/temp_dir.ts";
import { requireOrSkip, startDockerd } from "./_dockerd.ts";

const TEST_NAME = "README: every sh block runs as written against a private dockerd";
const REPO = fileURLToPath(new URL("../../", import.meta.url));
const SOCKETS = ["/run/docker/plugins/berth.sock", "/run/berth/berth.sock"];

type Block = { line: number; tag: string; text: string };

/** The ```sh blocks of `markdown`, with their tag (background, stopped, not-tested) and line. */
export function shellBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  for (const match of markdown.matchAll(/^```sh(?: ([\w-]+))?\n([^]*?)^```$/gm)) {
    const line = markdown.slice(0, match.index).split("\n").length;
    blocks.push({ line, tag: match[1] ?? "", text: match[2]! });
  }
  return blocks;
}

async function answers(path: string): Promise<boolean> {
  try {
    (await Deno.connect({ transport: "unix", path })).close();
    return true;
  } catch {
    return false;
  }
}

async function links(): Promise<Set<string>> {
  const out = await new Deno.Command("ip", { args: ["-o", "link", "show"], stdout: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  return new Set([...text.matchAll(/^\d+: ([^:@]+)/gm)].map((m) => m[1]!));
}

Deno.test({
  name: TEST_NAME,
  ignore: requireOrSkip(TEST_NAME),
  sanitizeResources: false,
  async fn() {
    for (const socket of SOCKETS) {
      assert.equal(await answers(socket), false, `a Berth already answers on ${socket}`);
    }
    const readme = await Deno.readTextFile(join(REPO, "README.md"));
    const blocks = shellBlocks(readme);
    assert.ok(blocks.length >= 5, "the README has its examples");
    assert.ok(blocks.every((b) => ["", "background", "stopped", "not-tested"].includes(b.tag)));

    await using dir = await tempDir("berth-readme-");
    await using dockerd = await startDockerd();
    // `npm install -g` goes to a prefix of the test's own (npm's documented npm_config_prefix),
    // first on PATH: replacing the machine's deno under a running `deno test` would leave its
    // Deno.execPath() naming a deleted file.
    const prefix = join(dir.path, "npm-prefix");
    const env = {
      DOCKER_HOST: `unix://${dockerd.socket}`,
      BERTH_STATE_DIR: join(dir.path, "state"),
      "npm_config_prefix": prefix,
      PATH: `${join(prefix, "bin")}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
    };
    const linksBefore = await links();
    const background: { block: Block; child: Deno.ChildProcess; log: string }[] = [];
    const stop = async () => {
      for (const entry of background.splice(0)) {
        try {
          Deno.kill(-entry.child.pid, "SIGTERM"); // its process group: bash and Berth
        } catch { /* gone */ }
        const status = await entry.child.status;
        const log = await Deno.readTextFile(entry.log);
        assert.equal(status.code, 0, `README line ${entry.block.line} ended badly:\n${log}`);
        assert.match(log, /stopped; log synced at event \d+/);
      }
    };
    try {
      for (const block of blocks) {
        if (block.tag === "not-tested") continue;
        if (block.tag === "stopped") await stop();
        const where = `README line ${block.line}:\n${block.text}`;
        if (block.tag === "background") {
          const log = join(dir.path, `background-${block.line}.log`);
          const child = new Deno.Command("setsid", {
            args: ["bash", "-euo", "pipefail", "-c", `exec >${log} 2>&1\n${block.text}`],
            cwd: REPO,
            env,
            stdin: "null",
          }).spawn();
          background.push({ block, child, log });
          const deadline = Date.now() + 90_000;
          while (!(await answers(SOCKETS[0]!))) {
            if (Date.now() > deadline) {
              throw new Error(`${where}\ndid not listen:\n${await Deno.readTextFile(log)}`);
            }
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
          continue;
        }
        const out = await new Deno.Command("bash", {
          args: ["-euo", "pipefail", "-c", block.text],
          cwd: REPO,
          env,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          signal: AbortSignal.timeout(120_000),
        }).output();
        const [stdout, stderr] = [out.stdout, out.stderr].map((b) => new TextDecoder().decode(b));
        assert.equal(
          out.code,
          0,
          `${where}\nexit ${out.code}\nstdout:\n${stdout}\nstderr:\n${stderr}`,
        );
      }
      await stop();
      // What the examples made, they removed: no container, no link of Berth's.
      assert.equal((await dockerd.docker(["ps", "-aq"])).stdout.trim(), "");
      const left = [...await links()].filter((name) => !linksBefore.has(name));
      assert.deepEqual(left, [], "links left behind");
    } finally {
      for (const entry of background) {
        try {
          Deno.kill(-entry.child.pid, "SIGKILL");
        } catch { /* gone */ }
        await entry.child.status;
      }
      // A failed example leaves its bridges and veths: those this run made go (Berth's prefix).
      for (const name of await links()) {
        if (!linksBefore.has(name) && name.startsWith("bth")) {
          await new Deno.Command("ip", { args: ["link", "del", name], stderr: "null" }).output();
        }
      }
      await Deno.remove(join(REPO, "bb"), { recursive: true }).catch(() => {});
      await Deno.remove(join(REPO, "volume.svg")).catch(() => {});
      for (const socket of SOCKETS) {
        if (!(await answers(socket))) await Deno.remove(socket).catch(() => {});
      }
    }
  },
});
