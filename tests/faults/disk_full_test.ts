// Fault: the state dir's filesystem fills up. Berth says why in replies and on stderr, answers no
// state change it could not record, goes on once space returns, and stops naming the last
// sequence that is on disk.
import assert from "node:assert/strict";
import { join } from "node:path";
import { runBerth, spawnBerth } from "../helpers/berth_process.ts";
import { pluginClient } from "../helpers/plugin_socket.ts";
import { rootMissing, skipUnless } from "../helpers/skip.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { fillUp, mountSmall, recordsOnDisk } from "./_fault.ts";

const NAME = "a full disk is reported, refused honestly and recovered from without a restart";
Deno.test({ name: NAME, ignore: skipUnless(NAME, rootMissing()) }, async () => {
  await using dir = await tempDir();
  await using disk = await mountSmall({ tmpfsKiB: 2048 });
  const socket = join(dir.path, "b.sock");
  const stateDir = join(disk.path, "s");
  await using berth = spawnBerth(["--socket", socket, "--state-dir", stateDir]);
  await berth.ready();
  using plugin = pluginClient(socket);
  assert.equal((await plugin.call("VolumeDriver.Create", { Name: "before" })).status, 200);

  const filler = join(disk.path, "filler");
  await fillUp(filler);
  // The segment's last page may still hold a record or two: call until the disk says no.
  let refused = null;
  let acked = 0;
  for (let n = 0; n < 100 && refused === null; n++) {
    const reply = await plugin.call("VolumeDriver.Mount", { Name: "before", ID: `full${n}` });
    if (reply.status === 200) acked++;
    else refused = reply;
  }
  assert.ok(refused, "a call was refused");
  assert.equal(refused.status, 500);
  assert.match(refused.text, /no space left on device/i);
  const again = await plugin.call("VolumeDriver.Create", { Name: "during" });
  assert.equal(again.status, 500);
  assert.match(again.text, /no space left on device/i);
  // Reads need no log entry and still answer.
  assert.equal((await plugin.call("VolumeDriver.Get", { Name: "before" })).status, 200);
  const complaint = berth.stderr().split("\n").filter((line) => /no space left/i.test(line));
  assert.equal(complaint.length, 1, berth.stderr());
  assert.doesNotMatch(berth.stderr(), /\n\s+at /, "no stack trace");

  await Deno.remove(filler);
  const after = await plugin.call("VolumeDriver.Create", { Name: "after" });
  assert.equal(after.status, 200, after.text);
  assert.equal(
    (await plugin.call("VolumeDriver.Mount", { Name: "after", ID: "c1" })).status,
    200,
  );
  // The refused Mount left no trace: the volume counts the acknowledged mounts, and takes more.
  const mounted = await plugin.call("VolumeDriver.Mount", { Name: "before", ID: "later" });
  assert.equal(mounted.status, 200, mounted.text);
  const get = await plugin.call("VolumeDriver.Get", { Name: "before" });
  assert.equal(
    (get.body as { Volume: { Status: { mounts: number } } }).Volume.Status.mounts,
    acked + 1,
  );
  const list = await plugin.call("VolumeDriver.List", {});
  const names = (list.body as { Volumes: { Name: string }[] }).Volumes.map((v) => v.Name).sort();
  assert.deepEqual(names, ["after", "before"]);
  assert.match(berth.stderr(), /written again/);

  berth.kill("SIGTERM");
  assert.equal((await berth.exited()).code, 0);
  const synced = /stopped; log synced at event (\d+)/.exec(berth.stderr());
  assert.ok(synced, berth.stderr());
  assert.equal(Number(synced[1]), recordsOnDisk(stateDir), "the shutdown line tells the truth");
  const verify = await runBerth(["verify", "--state-dir", stateDir]);
  assert.equal(verify.code, 0, verify.stderr);
});
