// Fault: the state dir's lock file deleted under a running Berth. A second Berth on the same state
// dir must still be refused: two writers would hand out the same sequence numbers.
import assert from "node:assert/strict";
import { join } from "node:path";
import { spawnBerth } from "../helpers/berth_process.ts";
import { pluginClient } from "../helpers/plugin_socket.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { refusedStart } from "./_fault.ts";

Deno.test("a second Berth is refused even after the lock file was deleted", async () => {
  await using dir = await tempDir();
  const stateDir = join(dir.path, "s");
  const socket = join(dir.path, "1.sock");
  await using first = spawnBerth(["--socket", socket, "--state-dir", stateDir]);
  await first.ready();
  await Deno.remove(join(stateDir, "lock"));
  const second = await refusedStart(
    ["--socket", join(dir.path, "2.sock"), "--state-dir", stateDir],
    10_000,
  );
  assert.equal(second.code, 1);
  assert.match(
    second.stderr,
    new RegExp(`Cannot lock state dir ${stateDir}: held by another Berth`),
  );
  // The first one still owns the log and goes on.
  using plugin = pluginClient(socket);
  const create = await plugin.call("VolumeDriver.Create", { Name: "vol" });
  assert.equal(create.status, 200, create.text);
  first.kill("SIGTERM");
  assert.equal((await first.exited()).code, 0);
  assert.equal((await Deno.stat(join(stateDir, "log"))).isDirectory, true);
});
