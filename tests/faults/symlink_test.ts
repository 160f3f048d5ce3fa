// Fault: entries of the state dir replaced by symbolic links to files elsewhere. Berth must not
// write, truncate, chmod or create through them: it refuses to start, naming the link.
import assert from "node:assert/strict";
import { join } from "node:path";
import { waitFor } from "../helpers/_crash.ts";
import { runBerth, spawnBerth } from "../helpers/berth_process.ts";
import { pluginClient } from "../helpers/plugin_socket.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { refusedStart } from "./_fault.ts";

const SEGMENT = "00000000000000000001.log";

/** A state dir with a few records, Berth stopped. */
async function stateWithLog(dir: string): Promise<{ args: string[]; stateDir: string }> {
  const socket = join(dir, "b.sock");
  const stateDir = join(dir, "s");
  const args = ["--socket", socket, "--state-dir", stateDir, "--snapshot-every", "3"];
  await using berth = spawnBerth(args);
  await berth.ready();
  using plugin = pluginClient(socket);
  for (const name of ["one", "two"]) {
    assert.equal((await plugin.call("VolumeDriver.Create", { Name: name })).status, 200);
  }
  // The snapshot is taken after the reply: wait for it, the last step links one.
  await waitFor(
    () => [...Deno.readDirSync(join(stateDir, "log"))].some((e) => e.name.endsWith(".snap")),
    "a snapshot",
  );
  berth.kill("SIGKILL");
  await berth.exited();
  return { args, stateDir };
}

/** A file outside the state dir, and a check that nothing about it changed. */
async function outsider(dir: string, name: string, isDir = false) {
  const path = join(dir, name);
  if (isDir) await Deno.mkdir(path, { mode: 0o755 });
  else await Deno.writeTextFile(path, "precious\n", { mode: 0o644 });
  await Deno.chmod(path, 0o755);
  const before = await Deno.stat(path);
  return {
    path,
    async unchanged() {
      const after = await Deno.stat(path);
      assert.equal(after.mode, before.mode, `${path}: mode changed`);
      if (isDir) assert.deepEqual(await Array.fromAsync(Deno.readDir(path)), [], `${path} filled`);
      else assert.equal(await Deno.readTextFile(path), "precious\n", `${path} written`);
    },
  };
}

async function refusesLink(args: string[], link: string) {
  const start = await refusedStart(args, 10_000);
  assert.equal(start.code, 1, start.stderr);
  assert.match(
    start.stderr,
    new RegExp(`\\[ERROR\\] berth: Cannot use ${link}: it is a symbolic link`),
  );
  assert.doesNotMatch(start.stderr, /\n\s+at /, "no stack trace");
}

Deno.test("Berth refuses symlinked entries in its state dir and touches nothing through them", async (t) => {
  await t.step("the lock file", async () => {
    await using dir = await tempDir();
    const { args, stateDir } = await stateWithLog(dir.path);
    const target = await outsider(dir.path, "elsewhere");
    await Deno.remove(join(stateDir, "lock"));
    await Deno.symlink(target.path, join(stateDir, "lock"));
    await refusesLink(args, join(stateDir, "lock"));
    await target.unchanged();
  });
  await t.step("the log directory", async () => {
    await using dir = await tempDir();
    const { args, stateDir } = await stateWithLog(dir.path);
    const target = await outsider(dir.path, "elsewhere", true);
    await Deno.remove(join(stateDir, "log"), { recursive: true });
    await Deno.symlink(target.path, join(stateDir, "log"));
    await refusesLink(args, join(stateDir, "log"));
    await target.unchanged();
  });
  await t.step("a log segment", async () => {
    await using dir = await tempDir();
    const { args, stateDir } = await stateWithLog(dir.path);
    const target = await outsider(dir.path, "elsewhere");
    const segment = join(stateDir, "log", SEGMENT);
    await Deno.remove(segment);
    await Deno.symlink(target.path, segment);
    await refusesLink(args, segment);
    // Readers neither skip it (a silent gap) nor read elsewhere: they name it too.
    const verify = await runBerth(["verify", "--state-dir", stateDir]);
    assert.equal(verify.code, 1, verify.stdout);
    assert.match(verify.stderr, new RegExp(`Cannot use ${segment}: it is a symbolic link`));
    await target.unchanged();
  });
  await t.step("a snapshot", async () => {
    await using dir = await tempDir();
    const { args, stateDir } = await stateWithLog(dir.path);
    const logDir = join(stateDir, "log");
    const name = [...Deno.readDirSync(logDir)].map((e) => e.name).find((n) => n.endsWith(".snap"));
    assert.ok(name, "a snapshot was taken");
    const target = await outsider(dir.path, "elsewhere");
    await Deno.remove(join(logDir, name));
    await Deno.symlink(target.path, join(logDir, name));
    await refusesLink(args, join(logDir, name));
    await target.unchanged();
  });
});
