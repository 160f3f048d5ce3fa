// Berth as a real process: its command line, its lock, a clean stop, and kill -9 in mid-stream.
import assert from "node:assert/strict";
import { join } from "node:path";
import { openFileStore } from "../src/log/file_store.ts";
import { encodeRecord } from "../src/log/record.ts";
import { runBerth, spawnBerth } from "./helpers/berth_process.ts";
import { pluginClient } from "./helpers/plugin_socket.ts";
import { tempDir } from "./helpers/temp_dir.ts";

Deno.test("main --help tells the truth about commands, flags and environment", async () => {
  const commands = [
    "serve",
    "status",
    "log",
    "history",
    "state",
    "verify",
    "compact",
    "repair",
    "install-service",
    "graph",
  ];
  for (const args of [["--help"], ["help"], ["-h"]]) {
    const { code, stdout } = await runBerth(args);
    assert.equal(code, 0);
    assert.match(stdout, /berth \[serve\] \[options\]/);
    for (const command of [...commands, "help"]) {
      assert.match(stdout, new RegExp(`^  ${command} +\\S`, "m"), `help lists ${command}`);
    }
  }
  // Each command's own help: through --help and through `help <command>`, the same text.
  for (const command of commands) {
    const own = await runBerth([command, "--help"]);
    assert.equal(own.code, 0, command);
    assert.match(own.stdout, new RegExp(`^Usage: berth ${command}`), command);
    assert.equal((await runBerth(["help", command])).stdout, own.stdout, command);
  }
  for (const args of [["serve", "--help"], ["help", "serve"]]) {
    const { code, stdout } = await runBerth(args);
    assert.equal(code, 0);
    for (
      const flag of [
        "--name",
        "--socket",
        "--state-dir",
        "BERTH_NAME",
        "BERTH_SOCKET",
        "BERTH_STATE_DIR",
        "/var/lib/berth",
        "/run/docker/plugins/NAME.sock",
        "--admin",
        "BERTH_ADMIN",
        "/run/berth/NAME.sock",
        "--snapshot-every",
        "BERTH_SNAPSHOT_EVERY",
        "--snapshot-mib",
        "BERTH_SNAPSHOT_MIB",
        "--keep-snapshots",
        "BERTH_KEEP_SNAPSHOTS",
        "--log-timeout",
        "BERTH_LOG_TIMEOUT",
      ]
    ) {
      assert.ok(stdout.includes(flag), `serve --help mentions ${flag}`);
    }
  }
});

Deno.test("main refuses unknown commands and flags with exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["frobnicate"],
      /^\[ERROR\] berth: there is no command "frobnicate"; "berth help" lists them\n$/,
    ],
    [["help", "frobnicate"], /^\[ERROR\] berth: there is no command "frobnicate"/],
    [["serve", "--nope"], /Unknown option '--nope'/],
    [["serve", "extra"], /unexpected argument "extra"/],
    [["--name", "../x"], /plugin name "\.\.\/x" must match/],
    [["serve", "--snapshot-every", "0"], /--snapshot-every "0" must be a whole number from 1/],
    [["serve", "--keep-snapshots", "two"], /--keep-snapshots "two" must be a whole number from 1/],
    [["compact", "--keep-snapshots", "0"], /--keep-snapshots "0" must be a whole number from 1/],
  ];
  for (const [args, message] of cases) {
    const { code, stderr } = await runBerth(args);
    assert.equal(code, 2, args.join(" "));
    assert.match(stderr, message);
  }
});

Deno.test("main serves until SIGTERM, then syncs, removes its socket and exits 0", async () => {
  await using dir = await tempDir();
  const socket = join(dir.path, "b.sock");
  await using berth = spawnBerth(["serve", "--socket", socket, "--state-dir", join(dir.path, "s")]);
  await berth.ready();
  using client = pluginClient(socket);
  assert.deepEqual((await client.call("VolumeDriver.Create", { Name: "v1" })).body, {});
  berth.kill("SIGTERM");
  const status = await berth.exited();
  assert.equal(status.code, 0, berth.stderr());
  await assert.rejects(() => Deno.lstat(socket), Deno.errors.NotFound);
  assert.match(berth.stderr(), /stopped; log synced at event 2/);
});

Deno.test("main takes its settings from BERTH_SOCKET and BERTH_STATE_DIR", async () => {
  await using dir = await tempDir();
  const socket = join(dir.path, "env.sock");
  const stateDir = join(dir.path, "env-state");
  await using berth = spawnBerth([], { BERTH_SOCKET: socket, BERTH_STATE_DIR: stateDir });
  await berth.ready(socket);
  assert.ok((await Deno.stat(join(stateDir, "log"))).isDirectory);
});

Deno.test("main refuses a second Berth on the same state dir, naming the holder", async () => {
  await using dir = await tempDir();
  const stateDir = join(dir.path, "s");
  await using first = spawnBerth(["--socket", join(dir.path, "1.sock"), "--state-dir", stateDir]);
  await first.ready();
  const second = await runBerth(["--socket", join(dir.path, "2.sock"), "--state-dir", stateDir]);
  assert.equal(second.code, 1);
  assert.match(
    second.stderr,
    new RegExp(`held by another Berth \\(pid ${first.child.pid}, started`),
  );
  await assert.rejects(() => Deno.lstat(join(dir.path, "2.sock")), Deno.errors.NotFound);
});

Deno.test("main refuses a socket path where another process listens", async () => {
  await using dir = await tempDir();
  const socket = join(dir.path, "b.sock");
  await using first = spawnBerth(["--socket", socket, "--state-dir", join(dir.path, "s1")]);
  await first.ready();
  const second = await runBerth(["--socket", socket, "--state-dir", join(dir.path, "s2")]);
  assert.equal(second.code, 1);
  assert.match(second.stderr, /another process is listening there/);
});

/** One client's stream: create a volume, mount it three times, next volume; notes answers. */
async function stream(
  socket: string,
  client: number,
  answered: Map<string, number>,
  stop: { now: boolean },
) {
  using plugin = pluginClient(socket);
  for (let n = 0; !stop.now; n++) {
    const name = `c${client}-v${n}`;
    try {
      if ((await plugin.call("VolumeDriver.Create", { Name: name })).status !== 200) return;
      answered.set(name, 0);
      for (let m = 0; m < 3; m++) {
        const reply = await plugin.call("VolumeDriver.Mount", { Name: name, ID: `m${m}` });
        if (reply.status !== 200) return;
        answered.set(name, m + 1);
      }
    } catch {
      return; // the connection died with the process: whatever was in flight was not answered
    }
  }
}

Deno.test("main loses nothing it answered when killed with SIGKILL mid-stream", async () => {
  await using dir = await tempDir();
  const socket = join(dir.path, "b.sock");
  const args = ["--socket", socket, "--state-dir", join(dir.path, "s")];
  const answered = new Map<string, number>();
  {
    await using berth = spawnBerth(args);
    await berth.ready();
    const stop = { now: false };
    const clients = Array.from({ length: 8 }, (_, c) => stream(socket, c, answered, stop));
    while (answered.size < 40) await new Promise((resolve) => setTimeout(resolve, 5));
    berth.kill("SIGKILL");
    stop.now = true;
    await Promise.all(clients);
    assert.equal((await berth.exited()).signal, "SIGKILL");
  }
  assert.ok((await Deno.lstat(socket)).isSocket, "the killed process left its socket behind");
  await using again = spawnBerth(args);
  await again.ready();
  using plugin = pluginClient(socket);
  const listed = (await plugin.call("VolumeDriver.List", {})).body as {
    Volumes: { Name: string }[];
  };
  const names = new Set(listed.Volumes.map((volume) => volume.Name));
  for (const [name, mounts] of answered) {
    assert.ok(names.has(name), `answered create of ${name} survived`);
    const get = await plugin.call("VolumeDriver.Get", { Name: name });
    const status = (get.body as { Volume: { Status: { mounts: number } } }).Volume.Status;
    // One call per client may have been in flight: logged but not answered, so at most one more.
    assert.ok(
      status.mounts >= mounts && status.mounts <= mounts + 1,
      `${name}: ${status.mounts} vs ${mounts}`,
    );
    for (let m = 0; m < status.mounts; m++) {
      const reply = await plugin.call("VolumeDriver.Unmount", { Name: name, ID: `m${m}` });
      assert.equal(reply.status, 200, `Unmount of ${name} m${m} after restart: ${reply.text}`);
    }
  }
  assert.doesNotMatch(again.stderr(), /ERROR/);
});

Deno.test("main survives a torn last record written by hand, warning about it", async () => {
  await using dir = await tempDir();
  const socket = join(dir.path, "b.sock");
  const stateDir = join(dir.path, "s");
  const args = ["--socket", socket, "--state-dir", stateDir];
  {
    await using berth = spawnBerth(args);
    await berth.ready();
    using plugin = pluginClient(socket);
    await plugin.call("VolumeDriver.Create", { Name: "keep" });
    await plugin.call("VolumeDriver.Mount", { Name: "keep", ID: "holder" });
    berth.kill("SIGKILL");
    await berth.exited();
  }
  const segment = join(stateDir, "log", "00000000000000000001.log");
  const whole = await Deno.readTextFile(segment);
  const half = '{"seq":5,"at":1,"actor":"volume/keep","type":"volume.unmount","v":1,"data":{"mou';
  await Deno.writeTextFile(segment, half, { append: true });
  await using again = spawnBerth(args);
  await again.ready();
  assert.match(again.stderr(), /\[WARN\] berth: Cut off a torn last record .* at byte \d+/);
  assert.equal(await Deno.readTextFile(segment), whole, "the torn bytes were cut off");
  using plugin = pluginClient(socket);
  const get = await plugin.call("VolumeDriver.Get", { Name: "keep" });
  assert.deepEqual((get.body as { Volume: { Status: unknown } }).Volume.Status, {
    state: "mounted",
    mounts: 1,
  });
  assert.equal(
    (await plugin.call("VolumeDriver.Unmount", { Name: "keep", ID: "holder" })).status,
    200,
  );
});

Deno.test("main stops with the file and offset when a record before the end is damaged", async () => {
  await using dir = await tempDir();
  const socket = join(dir.path, "b.sock");
  const stateDir = join(dir.path, "s");
  {
    await using berth = spawnBerth(["--socket", socket, "--state-dir", stateDir]);
    await berth.ready();
    using plugin = pluginClient(socket);
    await plugin.call("VolumeDriver.Create", { Name: "v1" });
    await plugin.call("VolumeDriver.Create", { Name: "v2" });
  }
  const segment = join(stateDir, "log", "00000000000000000001.log");
  const text = await Deno.readTextFile(segment);
  await Deno.writeTextFile(segment, text.replace('"volume/v1"', '"volume/vX"'));
  const { code, stderr } = await runBerth(["--socket", socket, "--state-dir", stateDir]);
  assert.equal(code, 1);
  assert.match(stderr, new RegExp(`${segment} is damaged at byte 0: checksum mismatch`));
  await assert.rejects(() => Deno.connect({ transport: "unix", path: socket }));
});

Deno.test("main stops, naming file and offset, on damage in a segment before the last", async () => {
  await using dir = await tempDir();
  const socket = join(dir.path, "b.sock");
  const stateDir = join(dir.path, "s");
  // Small segments, so that the damage lies in one that start no longer reads whole up front.
  const store = await openFileStore({
    dir: join(stateDir, "log"),
    warn: () => {},
    segmentBytes: 300,
  });
  for (let i = 0; i < 12; i++) {
    await store.append({
      at: i,
      actor: `volume/v${i}`,
      type: "volume.create",
      v: 1,
      data: { opts: {} },
    });
  }
  await store.close();
  const segments = [...Deno.readDirSync(join(stateDir, "log"))].map((entry) => entry.name).sort();
  assert.ok(segments.length >= 3, segments.join());
  const first = join(stateDir, "log", segments[0]!);
  const bytes = await Deno.readFile(first);
  const second = bytes.indexOf(0x0a) + 1;
  bytes[second + 20] = bytes[second + 20]! ^ 1;
  await Deno.writeFile(first, bytes);
  const { code, stderr } = await runBerth(["--socket", socket, "--state-dir", stateDir]);
  assert.equal(code, 1, stderr);
  assert.match(stderr, new RegExp(`Cannot read log: ${first} is damaged at byte ${second}: `));
  assert.equal(stderr.split("\n").filter((line) => line.includes("[ERROR]")).length, 1, stderr);
  await assert.rejects(() => Deno.connect({ transport: "unix", path: socket }));
});

Deno.test("main names file and offset of a well-checksummed record its machine refuses", async () => {
  await using dir = await tempDir();
  const socket = join(dir.path, "b.sock");
  const stateDir = join(dir.path, "s");
  await Deno.mkdir(join(stateDir, "log"), { recursive: true });
  const segment = join(stateDir, "log", "00000000000000000001.log");
  const good = encodeRecord({
    seq: 1,
    at: 1,
    actor: "volume/v1",
    type: "volume.create",
    v: 1,
    data: { opts: {} },
  });
  // What a Berth of old could log before events were checked on write: a number as a mount ID.
  const bad = encodeRecord({
    seq: 2,
    at: 2,
    actor: "volume/v1",
    type: "volume.mount",
    v: 1,
    data: { mountId: 7 },
  });
  await Deno.writeFile(segment, new Uint8Array([...good, ...bad]));
  const { code, stderr } = await runBerth(["--socket", socket, "--state-dir", stateDir]);
  assert.equal(code, 1, stderr);
  assert.match(
    stderr,
    new RegExp(
      `${segment} is damaged at byte ${good.length}: sequence 2: volume/v1 volume\\.mount ` +
        `does not fit its schema: mountId: `,
    ),
  );
  assert.equal(stderr.trim().split("\n").filter((line) => line.includes("[ERROR]")).length, 1);
});

Deno.test("main opens its socket only once replay is complete", async () => {
  await using dir = await tempDir();
  const socket = join(dir.path, "b.sock");
  const args = ["--socket", socket, "--state-dir", join(dir.path, "s")];
  {
    await using berth = spawnBerth(args);
    await berth.ready();
    using plugin = pluginClient(socket);
    await Promise.all(
      Array.from({ length: 300 }, (_, n) => plugin.call("VolumeDriver.Create", { Name: `v${n}` })),
    );
    berth.kill("SIGTERM");
    await berth.exited();
  }
  await using again = spawnBerth(args);
  using plugin = pluginClient(socket);
  // Ask the very moment the socket accepts a connection: the answer must already be complete.
  await again.ready();
  const listed = (await plugin.call("VolumeDriver.List", {})).body as { Volumes: unknown[] };
  assert.equal(listed.Volumes.length, 300);
});

Deno.test("main stops cleanly on a SIGTERM that arrives while it starts", async () => {
  await using dir = await tempDir();
  const socket = join(dir.path, "b.sock");
  const args = ["--socket", socket, "--state-dir", join(dir.path, "s")];
  await using berth = spawnBerth(args);
  // "starting" is printed once the signal listeners are in place, before the log is replayed.
  const deadline = Date.now() + 10_000;
  while (!/starting: replaying/.test(berth.stderr())) {
    assert.ok(Date.now() < deadline, `no "starting" line:\n${berth.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  berth.kill("SIGTERM");
  const status = await berth.exited();
  assert.equal(status.code, 0, berth.stderr());
  await assert.rejects(() => Deno.lstat(socket), Deno.errors.NotFound);
});

Deno.test("the README's command list is what berth help prints", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const block = /## Command line\n\n```\n([^]*?)```/.exec(readme)?.[1];
  const { stdout } = await runBerth(["help"]);
  assert.equal(block, stdout);
});
