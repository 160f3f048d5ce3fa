// Fault: the state dir's filesystem fills up. Berth says why in replies and on stderr, answers no
// state change it could not record, goes on once space returns, and stops naming the last
// sequence that is on disk.
import assert from "node:assert/strict";
import { join } from "node:path";
import { createEngine } from "../../src/engine/engine.ts";
import { createVolumeEffects } from "../../src/engine/volume_effects.ts";
import { openFileStore } from "../../src/log/file_store.ts";
import { readLog } from "../../src/log/reader.ts";
import { waitFor } from "../helpers/_crash.ts";
import { runBerth, spawnBerth } from "../helpers/berth_process.ts";
import { createRecordingBackend } from "../helpers/recording_backend.ts";
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

const OUTCOME = "an effect whose outcome a full disk refused is recorded once space returns";
Deno.test({ name: OUTCOME, ignore: skipUnless(OUTCOME, rootMissing()) }, async () => {
  await using disk = await mountSmall({ tmpfsKiB: 1024 });
  const warnings: string[] = [];
  // One segment per batch: every batch needs a fresh page, so a full disk refuses each one.
  const store = await openFileStore({
    dir: join(disk.path, "log"),
    warn: (line) => warnings.push(line),
    segmentBytes: 1,
  });
  const fake = createRecordingBackend();
  const engine = createEngine({ store, effects: { volume: createVolumeEffects(fake.backend) } });
  try {
    const gate = Promise.withResolvers<void>();
    fake.gates.push(gate.promise);
    const creating = engine.dispatch("volume/db", { type: "volume.create", opts: {} });
    await waitFor(() => fake.calls.length === 1, "the create effect");
    const filler = join(disk.path, "filler");
    await fillUp(filler); // the intent is on disk, the effect ran, its outcome finds no room
    gate.resolve();
    await assert.rejects(creating, /no space left on device/i);
    await Deno.remove(filler);
    await waitFor(async () => {
      const snapshot = await engine.read("volume/db").catch(() => null);
      return snapshot?.value === "unmounted";
    }, "the outcome to be recorded");
    assert.deepEqual(fake.calls, [{ op: "create", name: "db" }], "the effect ran once");
    assert.match(warnings.join("\n"), /written again/);
  } finally {
    await engine.drain();
    await store.close();
  }
  const records = await Array.fromAsync(readLog(join(disk.path, "log")));
  assert.deepEqual(records.map((r) => r.type), ["volume.create", "effect.succeeded"]);
});
