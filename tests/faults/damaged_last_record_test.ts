// Fault: one flipped byte in a complete, acknowledged last record. Berth must not drop it as a
// torn write: the start stops naming file and offset, verify agrees, and only the operator's
// `berth repair` (through the lock) cuts it.
import assert from "node:assert/strict";
import { join } from "node:path";
import { lockStateDir } from "../../src/log/lock.ts";
import { runBerth, spawnBerth } from "../helpers/berth_process.ts";
import { pluginClient } from "../helpers/plugin_socket.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { refusedStart } from "./_fault.ts";

Deno.test("a complete last record with a flipped byte stops the start; repair cuts it on request", async () => {
  await using dir = await tempDir();
  const socket = join(dir.path, "b.sock");
  const stateDir = join(dir.path, "s");
  const args = ["--socket", socket, "--state-dir", stateDir];
  {
    await using berth = spawnBerth(args);
    await berth.ready();
    using plugin = pluginClient(socket);
    assert.equal((await plugin.call("VolumeDriver.Create", { Name: "db" })).status, 200);
    const mount = await plugin.call("VolumeDriver.Mount", { Name: "db", ID: "c1" });
    assert.equal(mount.status, 200, "the Mount was acknowledged");
    berth.kill("SIGKILL");
    await berth.exited();
  }
  const segment = join(stateDir, "log", "00000000000000000001.log");
  const bytes = await Deno.readFile(segment);
  const lastStart = bytes.lastIndexOf(0x0a, bytes.length - 2) + 1;
  bytes[bytes.length - 20] = bytes[bytes.length - 20]! ^ 0x01;
  await Deno.writeFile(segment, bytes);

  const start = await refusedStart(args);
  assert.equal(start.code, 1, start.stderr);
  assert.match(start.stderr, new RegExp(`${segment} is damaged at byte ${lastStart}: checksum`));
  assert.match(start.stderr, /berth repair --truncate-at/);
  assert.doesNotMatch(start.stderr, /Cut off|never acknowledged|\n\s+at /);
  assert.equal(start.stderr.trim().split("\n").filter((l) => l.startsWith("[ERROR]")).length, 1);
  assert.deepEqual(await Deno.readFile(segment), bytes, "the start cut nothing");

  const verify = await runBerth(["verify", "--state-dir", stateDir]);
  assert.equal(verify.code, 1);
  assert.match(verify.stderr, new RegExp(`${segment} is damaged at byte ${lastStart}`));

  {
    using _held = await lockStateDir(stateDir);
    const refused = await runBerth(["repair", "--state-dir", stateDir, "--truncate-at", "0"]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /held by another Berth .*stop it before repairing/);
  }
  const middle = await runBerth([
    "repair",
    "--state-dir",
    stateDir,
    "--truncate-at",
    String(lastStart + 3),
  ]);
  assert.equal(middle.code, 1);
  assert.match(middle.stderr, new RegExp(`byte ${lastStart + 3} .* does not start a record`));
  assert.deepEqual(await Deno.readFile(segment), bytes, "a refused repair cut nothing");

  const repair = await runBerth([
    "repair",
    "--state-dir",
    stateDir,
    "--truncate-at",
    String(lastStart),
  ]);
  assert.equal(repair.code, 0, repair.stderr);
  const lastSeq = (new TextDecoder().decode(bytes.subarray(0, lastStart)).match(/\n/g) ?? [])
    .length;
  assert.equal(
    repair.stdout,
    `repaired: cut ${bytes.length - lastStart} bytes (1 record) from ${segment} at byte ` +
      `${lastStart}; the log now ends at sequence ${lastSeq}\n`,
  );
  assert.equal((await Deno.stat(segment)).size, lastStart);
  assert.equal((await runBerth(["verify", "--state-dir", stateDir])).code, 0);
  await using again = spawnBerth(args);
  await again.ready();
});
