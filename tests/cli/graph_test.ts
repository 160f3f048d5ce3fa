// berth graph as the operator runs it: the real program as a child, its stdout against the
// golden drawings, and a wrong kind or format said in one line with exit 2.
import assert from "node:assert/strict";
import { join } from "node:path";

const ROOT = join(import.meta.dirname!, "..", "..");
const GOLDEN = join(ROOT, "tests", "inspect", "golden");
function golden(name: string): Promise<string> {
  return Deno.readTextFile(join(GOLDEN, name));
}

async function berthGraph(...args: string[]) {
  const command = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", join(ROOT, "main.ts"), "graph", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const { code, stdout, stderr } = await command.output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

Deno.test("berth graph writes each format of a machine to stdout, as the golden files", async (t) => {
  await t.step("svg", async () => {
    const run = await berthGraph("volume", "--format", "svg");
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, await golden("volume.svg"));
    assert.equal(run.stderr, "");
  });
  await t.step("svg is the default; mermaid, dot and json on request", async () => {
    const plain = await berthGraph("pool");
    assert.equal(plain.stdout, await golden("pool.svg"));
    for (const [format, extension] of [["mermaid", "mmd"], ["dot", "dot"], ["json", "json"]]) {
      const run = await berthGraph("network", `--format=${format}`);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, await golden(`network.${extension}`));
    }
  });
});

Deno.test("berth graph refuses an unknown kind or format with exit 2 and the choices", async (t) => {
  await t.step("kind", async () => {
    const run = await berthGraph("volumes", "--format", "svg");
    assert.equal(run.code, 2);
    assert.equal(run.stdout, "");
    const lines = run.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0]!, /unknown kind "volumes"/);
    for (const kind of ["volume", "network", "endpoint", "pool"]) {
      assert.ok(lines[0]!.includes(kind));
    }
  });
  await t.step("format", async () => {
    const run = await berthGraph("volume", "--format", "png");
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^\[ERROR\] berth: unknown format "png": .*svg, mermaid, dot, json/);
    assert.equal(run.stderr.trimEnd().split("\n").length, 1);
  });
});
