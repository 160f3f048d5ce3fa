// berth status against a real running Berth, a stale socket and nothing at all.
import assert from "node:assert/strict";
import { join } from "node:path";
import { runBerth, spawnBerth } from "../helpers/berth_process.ts";
import { pluginClient } from "../helpers/plugin_socket.ts";
import { tempDir } from "../helpers/temp_dir.ts";

Deno.test("status tells uptime, log size and actors by state of a running Berth", async () => {
  await using dir = await tempDir();
  const socket = join(dir.path, "b.sock");
  const admin = join(dir.path, "admin.sock");
  await using berth = spawnBerth([
    "--socket",
    socket,
    "--state-dir",
    join(dir.path, "s"),
    "--admin",
    admin,
  ]);
  await berth.ready();
  using client = pluginClient(socket);
  for (
    const [method, body] of [
      ["VolumeDriver.Create", { Name: "aa" }],
      ["VolumeDriver.Create", { Name: "bb" }],
      ["VolumeDriver.Mount", { Name: "bb", ID: "c1" }],
    ] as const
  ) {
    assert.equal((await client.call(method, body)).status, 200, method);
  }
  const text = await runBerth(["status", "--admin", admin]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`Berth is running on ${admin}: pid ${berth.child.pid}, up`));
  assert.match(text.stdout, /log: 6 events, \d+(\.\d)? (B|KiB)/);
  assert.match(text.stdout, /volume\s+2\s+\(unmounted 1, mounted 1\)/);
  assert.match(text.stdout, /^start: replay [\d.]+ s \(0 records\), reconcile [\d.]+ s$/m);
  assert.match(text.stdout, /^snapshots: none yet$/m);
  const json = await runBerth(["status", "--admin", admin, "--json"]);
  assert.equal(json.code, 0);
  const answer = JSON.parse(json.stdout);
  assert.equal(answer.lastSeq, 6);
  assert.deepEqual(answer.actors.volume, { unmounted: 1, mounted: 1 });
});

Deno.test("status says plainly when no Berth runs, exit 1", async () => {
  await using dir = await tempDir();
  const missing = join(dir.path, "none.sock");
  const none = await runBerth(["status", "--admin", missing]);
  assert.equal(none.code, 1);
  assert.equal(
    none.stderr.trim(),
    `[ERROR] berth: No Berth is running: nothing answers on ${missing}`,
  );
  // A socket file left by a Berth that was killed: nobody answers there either.
  const stale = join(dir.path, "stale.sock");
  const listener = Deno.listen({ transport: "unix", path: stale });
  listener.close();
  const left = await runBerth(["status", "--admin", stale]);
  assert.equal(left.code, 1);
  assert.match(left.stderr, /No Berth is running: nothing answers on/);
  const port = await runBerth(["status", "--admin", "127.0.0.1:1"]);
  assert.equal(port.code, 1);
  assert.match(port.stderr, /No Berth is running: nothing answers on http:\/\/127\.0\.0\.1:1/);
});

Deno.test("status and /metrics tell which snapshot the start read and the newest one taken", async () => {
  await using dir = await tempDir();
  const socket = join(dir.path, "b.sock");
  const admin = join(dir.path, "admin.sock");
  const args = ["--socket", socket, "--state-dir", join(dir.path, "s"), "--snapshot-every", "4"];
  {
    await using first = spawnBerth(args);
    await first.ready();
    using client = pluginClient(socket);
    for (const Name of ["aa", "bb", "cc"]) {
      assert.equal((await client.call("VolumeDriver.Create", { Name })).status, 200);
    }
    first.kill("SIGTERM");
    assert.equal((await first.exited()).code, 0); // the stop takes a snapshot at 6
  }
  await using berth = spawnBerth([...args, "--admin", admin]);
  await berth.ready();
  // The plugin socket accepts a moment before the admin endpoint stops saying "starting".
  let before = await runBerth(["status", "--admin", admin]);
  for (let tries = 0; before.code !== 0 && tries < 100; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    before = await runBerth(["status", "--admin", admin]);
  }
  assert.match(before.stdout, /^start: replay [\d.]+ s \(snapshot at 6 \+ 0 records\)/m);
  assert.match(before.stdout, /^snapshots: newest at sequence 6 \(read at start\)$/m);
  using client = pluginClient(socket);
  for (const Name of ["dd", "ee"]) {
    assert.equal((await client.call("VolumeDriver.Create", { Name })).status, 200);
  }
  // 4 records since the snapshot: the next one is taken once the last is durable.
  const deadline = Date.now() + 5000;
  let json = JSON.parse((await runBerth(["status", "--admin", admin, "--json"])).stdout);
  while (json.snapshotSeq !== 10 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    json = JSON.parse((await runBerth(["status", "--admin", admin, "--json"])).stdout);
  }
  assert.equal(json.snapshotSeq, 10);
  assert.equal(json.startSnapshotSeq, 6);
  assert.equal(json.snapshotFailures, 0);
  assert.match(json.snapshotAt, /^\d{4}-\d\d-\d\dT/);
});
