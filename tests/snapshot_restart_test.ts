// Snapshots and compaction with real parts: a Berth process killed with SIGKILL comes back from
// its newest snapshot and the log after it; compaction deletes segments and the state survives;
// a damaged snapshot falls back to the one before; compact and verify on the command line.
import assert from "node:assert/strict";
import { join } from "node:path";
import { listSegments } from "../src/log/reader.ts";
import { listSnapshots, readSnapshot, writeSnapshot } from "../src/log/snapshot_file.ts";
import { runBerth, spawnBerth } from "./helpers/berth_process.ts";
import { type Call, pluginClient, startInProcess } from "./helpers/plugin_socket.ts";
import { tempDir } from "./helpers/temp_dir.ts";

/**
 * Volumes v0…v(n-1), each mounted by `mounts` IDs: mounts + 3 records per volume (create and its
 * effect, the first mount and its effect, one record for each further mount).
 */
async function fill(call: Call, volumes: number, mounts: number) {
  for (let v = 0; v < volumes; v++) {
    assert.equal((await call("VolumeDriver.Create", { Name: `v${v}`, Opts: {} })).status, 200);
    for (let m = 0; m < mounts; m++) {
      const reply = await call("VolumeDriver.Mount", { Name: `v${v}`, ID: `m${v}-${m}` });
      assert.equal(reply.status, 200, reply.text);
    }
  }
}

/** Waits until Berth printed its "serving" line (the socket accepts a moment before). */
async function serving(berth: { stderr(): string }) {
  const deadline = Date.now() + 10_000;
  while (!/\[INFO\] berth: serving /.test(berth.stderr())) {
    assert.ok(Date.now() < deadline, `no "serving" line:\n${berth.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** `berth state` of a stopped (or killed) Berth's state dir: the text after the first line. */
async function stateText(stateDir: string): Promise<string> {
  const { code, stdout, stderr } = await runBerth(["state", "--state-dir", stateDir]);
  assert.equal(code, 0, stderr);
  return stdout;
}

Deno.test("after SIGKILL Berth starts from its newest snapshot and replays only the log after it", async () => {
  await using dir = await tempDir();
  const stateDir = join(dir.path, "state");
  const socket = join(dir.path, "berth.sock");
  const args = ["--socket", socket, "--state-dir", stateDir, "--snapshot-every", "25"];
  {
    await using berth = spawnBerth(args);
    await berth.ready();
    using client = pluginClient(socket);
    await fill(client.call, 7, 5); // 56 records: snapshots at 25 and 50
    const snapshots = await listSnapshots(join(stateDir, "log"));
    assert.ok(snapshots.length >= 2, `snapshots taken while running: ${snapshots.length}`);
    berth.kill("SIGKILL");
    await berth.exited();
  }
  const before = await stateText(stateDir);
  const newest = (await listSnapshots(join(stateDir, "log"))).at(-1)!;
  assert.ok(newest.seq < 56, "the kill came after the newest snapshot");
  await using again = spawnBerth(args);
  await again.ready();
  await serving(again);
  using client = pluginClient(socket);
  const list = await client.call("VolumeDriver.List", {});
  const volumes = (list.body as { Volumes: { Name: string; Status: { mounts: number } }[] })
    .Volumes;
  assert.deepEqual(
    volumes.map((volume) => [volume.Name, volume.Status.mounts]).sort(),
    [0, 1, 2, 3, 4, 5, 6].map((v) => [`v${v}`, 5]),
  );
  assert.match(
    again.stderr(),
    new RegExp(`56 events: snapshot at ${newest.seq} \\+ ${56 - newest.seq} replayed`),
  );
  assert.doesNotMatch(again.stderr(), /WARN/);
  again.kill("SIGTERM");
  assert.equal((await again.exited()).code, 0);
  // The clean stop took a snapshot at the end: the next start replays nothing.
  assert.equal((await listSnapshots(join(stateDir, "log"))).at(-1)!.seq, 56);
  assert.equal(await stateText(stateDir), before);
});

Deno.test("a chain of delta snapshots brings back the state after SIGKILL, and verify agrees", async () => {
  await using dir = await tempDir();
  const stateDir = join(dir.path, "state");
  const socket = join(dir.path, "berth.sock");
  const args = ["--socket", socket, "--state-dir", stateDir, "--snapshot-every", "6"];
  {
    await using berth = spawnBerth(args);
    await berth.ready();
    using client = pluginClient(socket);
    await fill(client.call, 30, 1); // 120 records, 30 actors: fulls, then deltas
    // Few actors change often: deltas of two or three actors each.
    for (let i = 0; i < 24; i++) {
      const name = `v${i % 3}`;
      const reply = await client.call("VolumeDriver.Mount", { Name: name, ID: `again-${i}` });
      assert.equal(reply.status, 200, reply.text);
    }
    const unmount = await client.call("VolumeDriver.Unmount", { Name: "v29", ID: "m29-0" });
    assert.equal(unmount.status, 200, unmount.text);
    assert.equal((await client.call("VolumeDriver.Remove", { Name: "v29" })).status, 200);
    const snapshots = await listSnapshots(join(stateDir, "log"));
    assert.ok(snapshots.filter((file) => file.delta).length >= 2, JSON.stringify(snapshots));
    berth.kill("SIGKILL");
    await berth.exited();
  }
  const before = await stateText(stateDir);
  assert.match(before, /^as of sequence \d+: 29 actors\n/);
  const verified = await runBerth(["verify", "--state-dir", stateDir]);
  assert.equal(verified.code, 0, verified.stderr);
  await using again = spawnBerth(args);
  await again.ready();
  await serving(again);
  const newest = (await listSnapshots(join(stateDir, "log"))).at(-1)!;
  assert.ok(newest.delta, "the start stood on a delta");
  assert.match(again.stderr(), new RegExp(`snapshot at ${newest.seq} \\+`));
  assert.doesNotMatch(again.stderr(), /WARN/);
  using client = pluginClient(socket);
  for (const [name, mounts] of [["v0", 9], ["v1", 9], ["v2", 9], ["v3", 1]] as const) {
    const reply = await client.call("VolumeDriver.Get", { Name: name });
    assert.equal(
      (reply.body as { Volume: { Status: { mounts: number } } }).Volume.Status.mounts,
      mounts,
    );
  }
  assert.equal((await client.call("VolumeDriver.Get", { Name: "v29" })).status, 500);
  again.kill("SIGTERM");
  assert.equal((await again.exited()).code, 0);
  // The stop logged nothing new, so the state is the same, down to the sequence number.
  assert.equal(await stateText(stateDir), before);
});

Deno.test("compaction deletes covered segments; the state, verify and time travel still hold", async () => {
  await using dir = await tempDir();
  const options = {
    segmentBytes: 2048,
    checkpoints: { everyEvents: 30, everyBytes: 1 << 30, keep: 2 },
  };
  const logDir = join(dir.path, "state", "log");
  {
    await using berth = await startInProcess(dir.path, options);
    await fill(berth.call, 8, 6); // 72 records in segments of about 15
    assert.deepEqual(berth.problems(), []);
  }
  const segments = await listSegments(logDir);
  const snapshots = await listSnapshots(logDir);
  assert.equal(snapshots.length, 2, "only the newest two are kept");
  assert.equal(snapshots.at(-1)!.seq, 72, "and the last one was taken at stop");
  assert.ok(segments[0]!.firstSeq > 1, "the oldest segments are gone");
  assert.ok(segments[0]!.firstSeq <= snapshots[0]!.seq + 1, "no gap after the oldest snapshot");
  const stateDir = join(dir.path, "state");
  const verified = await runBerth(["verify", "--state-dir", stateDir]);
  assert.equal(verified.code, 0, verified.stderr);
  assert.match(
    verified.stdout,
    /^ok: .* last sequence 72, 8 live actors, 2 snapshots \(newest at sequence 72\)\n$/,
  );
  const early = await runBerth(["state", "--at", "5", "--state-dir", stateDir]);
  assert.equal(early.code, 1);
  assert.match(
    early.stderr,
    new RegExp(
      `Cannot show the state at sequence 5: the log before sequence ${
        segments[0]!.firstSeq
      } was compacted; the oldest state kept is at sequence ${snapshots[0]!.seq}`,
    ),
  );
  // v0's whole life lies before the oldest kept snapshot: its history starts from that snapshot.
  const history = await runBerth(["history", "volume/v0", "--state-dir", stateDir]);
  assert.equal(history.code, 0, history.stderr);
  const from = snapshots[0]!.seq + 1;
  assert.equal(
    history.stdout.split("\n")[0],
    `before sequence ${from} (compacted, from the snapshot): volume/v0 mounted  ` +
      JSON.stringify((await readSnapshot(snapshots[0]!.path)).entries[0]!.context)
        .replace(
          /"mounts":\[.*\]\]/,
          '"mounts":{"m0-0":1,"m0-1":1,"m0-2":1,"m0-3":1,"m0-4":1,"m0-5":1}',
        ),
  );
  assert.match(history.stdout, /^now: volume\/v0 is mounted/m);
  assert.match(history.stdout, /^held by 6 mount IDs: m0-0 since before the compacted history,/m);
  // Restarted in process: every volume and mount is back.
  await using again = await startInProcess(dir.path, options);
  assert.deepEqual(again.problems(), []);
  assert.deepEqual(again.berth.replayed, { snapshotSeq: 72, records: 0 });
  for (let v = 0; v < 8; v++) {
    const reply = await again.call("VolumeDriver.Get", { Name: `v${v}` });
    assert.equal(
      (reply.body as { Volume: { Status: { mounts: number } } }).Volume.Status.mounts,
      6,
    );
  }
});

Deno.test("a damaged newest snapshot falls back to the one before it, with a warning", async () => {
  await using dir = await tempDir();
  const options = { checkpoints: { everyEvents: 20, everyBytes: 1 << 30, keep: 3 } };
  {
    await using berth = await startInProcess(dir.path, options);
    await fill(berth.call, 4, 4); // 28 records: snapshots at 20 and at stop
  }
  const logDir = join(dir.path, "state", "log");
  const [older, newest] = (await listSnapshots(logDir)).slice(-2);
  const bytes = await Deno.readFile(newest!.path);
  bytes[200]! ^= 0x20;
  await Deno.writeFile(newest!.path, bytes);
  await using again = await startInProcess(dir.path, options);
  assert.deepEqual(again.berth.replayed, { snapshotSeq: older!.seq, records: 28 - older!.seq });
  assert.equal(again.errors.length, 1, again.errors.join("\n"));
  assert.match(again.errors[0]!, /is damaged at byte \d+: checksum mismatch; trying an older one/);
  const reply = await again.call("VolumeDriver.List", {});
  assert.equal((reply.body as { Volumes: unknown[] }).Volumes.length, 4);
});

Deno.test("verify names a damaged snapshot and one that disagrees with the log", async () => {
  await using dir = await tempDir();
  {
    await using berth = await startInProcess(dir.path);
    await fill(berth.call, 2, 2);
  }
  const stateDir = join(dir.path, "state");
  const [snapshot] = await listSnapshots(join(stateDir, "log"));
  const { header, entries } = await readSnapshot(snapshot!.path);
  // Well formed and sealed, but not what the log says: one mount too many.
  const lying = entries.map((entry) =>
    entry.id === "volume/v1"
      ? {
        ...entry,
        context: { ...entry.context as object, mounts: [["m1-0", 1], ["m1-1", 1], ["x", 1]] },
      }
      : entry
  );
  await Deno.remove(snapshot!.path);
  await writeSnapshot(join(stateDir, "log"), header, lying.length, lying);
  const disagrees = await runBerth(["verify", "--state-dir", stateDir]);
  assert.equal(disagrees.code, 1);
  assert.match(
    disagrees.stderr,
    /snapshot .*\.snap does not match the log at sequence 10: volume\/v1 differs/,
  );
  const bytes = await Deno.readFile(snapshot!.path);
  bytes[bytes.length - 5]! ^= 0x01;
  await Deno.writeFile(snapshot!.path, bytes);
  const damaged = await runBerth(["verify", "--state-dir", stateDir]);
  assert.equal(damaged.code, 1);
  assert.match(damaged.stderr, /\.snap is damaged at byte \d+ \(sequence 10\): checksum mismatch/);
});

Deno.test("compact refuses while Berth runs, and compacts a stopped one's state dir", async () => {
  await using dir = await tempDir();
  const stateDir = join(dir.path, "state");
  const socket = join(dir.path, "berth.sock");
  await using berth = spawnBerth(["--socket", socket, "--state-dir", stateDir]);
  await berth.ready();
  using client = pluginClient(socket);
  await fill(client.call, 3, 2);
  const refused = await runBerth(["compact", "--state-dir", stateDir]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /held by another Berth .*stop it to compact by hand/);
  assert.deepEqual(await listSnapshots(join(stateDir, "log")), []);
  berth.kill("SIGKILL");
  await berth.exited();
  const before = await stateText(stateDir);
  const done = await runBerth(["compact", "--state-dir", stateDir, "--keep-snapshots", "1"]);
  assert.equal(done.code, 0, done.stderr);
  assert.match(
    done.stdout,
    /^compacted: snapshot at sequence 15 \(3 actors, 0\.0 MiB\); removed 0 segments \(0\.0 MiB\) and 0 older snapshots\n$/,
  );
  assert.equal(await stateText(stateDir), before);
  const again = await runBerth(["compact", "--state-dir", stateDir]);
  assert.match(again.stdout, /the newest snapshot already covers sequence 15/);
});
