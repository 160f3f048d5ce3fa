// What `berth serve` tells its operator: one line per call that changes state or is refused
// (--log-level, --log-format), one line and nothing left behind when a start is refused.
import assert from "node:assert/strict";
import { join } from "node:path";
import { hasNetAdmin, missingPrivileges } from "../../src/cli/_privileges.ts";
import { runBerth, spawnBerth } from "../helpers/berth_process.ts";
import { pluginClient } from "../helpers/plugin_socket.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const NETWORK = "c599867bf155fff9018f995a80bb4f4b8bbee9c70a3b2c294a331ebb5dd8c2bb";

/** Runs a few calls against a Berth started with `flags`; returns its stderr after a clean stop. */
async function stderrOf(flags: string[]): Promise<string> {
  await using dir = await tempDir();
  const socket = join(dir.path, "b.sock");
  const berth = spawnBerth([
    "serve",
    "--socket",
    socket,
    "--state-dir",
    join(dir.path, "s"),
    ...flags,
  ]);
  try {
    await berth.ready(socket);
    using client = pluginClient(socket);
    await client.call("VolumeDriver.Create", { Name: "db", Opts: { mode: "0700" } });
    await client.call("VolumeDriver.Mount", { Name: "db", ID: "a".repeat(64) });
    await client.call("VolumeDriver.Remove", { Name: "db" });
    await client.call("VolumeDriver.Get", { Name: "db" });
    await client.call("NetworkDriver.CreateEndpoint", {
      NetworkID: NETWORK,
      EndpointID: "b".repeat(64),
      Interface: {},
    });
    berth.kill("SIGTERM");
    assert.equal((await berth.exited()).code, 0, berth.stderr());
    return berth.stderr();
  } finally {
    await berth[Symbol.asyncDispose]();
  }
}

Deno.test("each call that changes state or is refused is one line on stderr", async () => {
  const lines = (await stderrOf([])).split("\n").filter((line) => /Driver\./.test(line));
  assert.equal(lines.length, 4, lines.join("\n"));
  assert.match(
    lines[0]!,
    /^\[INFO\] berth: VolumeDriver\.Create volume "db": ok in \d+(\.\d)? ms$/,
  );
  assert.match(
    lines[1]!,
    /^\[INFO\] berth: VolumeDriver\.Mount volume "db" \(mount aaaaaaaaaaaa\): ok in /,
  );
  assert.match(
    lines[2]!,
    /^\[INFO\] berth: VolumeDriver\.Remove volume "db": refused in [\d.]+ ms: Cannot remove volume "db": in use by 1 mount$/,
  );
  assert.match(
    lines[3]!,
    /^\[INFO\] berth: NetworkDriver\.CreateEndpoint endpoint bbbbbbbbbbbb of network c599867bf155: refused in [\d.]+ ms: \S.*$/,
  );
});

Deno.test("--log-format json and --log-level debug: every call, as JSON lines", async () => {
  const lines = (await stderrOf(["--log-format", "json", "--log-level", "debug"])).trim().split(
    "\n",
  );
  const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  for (const line of parsed) {
    assert.ok(typeof line["@message"] === "string" && typeof line["@timestamp"] === "string");
  }
  const calls = parsed.filter((line) => typeof line.method === "string");
  assert.deepEqual(
    calls.map(({ method, entity, outcome, "@level": level }) => [method, entity, outcome, level]),
    [
      ["VolumeDriver.Create", 'volume "db"', "ok", "info"],
      ["VolumeDriver.Mount", 'volume "db" (mount aaaaaaaaaaaa)', "ok", "info"],
      ["VolumeDriver.Remove", 'volume "db"', "refused", "info"],
      ["VolumeDriver.Get", 'volume "db"', "ok", "debug"],
      [
        "NetworkDriver.CreateEndpoint",
        "endpoint bbbbbbbbbbbb of network c599867bf155",
        "refused",
        "info",
      ],
    ],
  );
  assert.equal(calls[2]!.error, 'Cannot remove volume "db": in use by 1 mount');
  assert.ok(calls.every((line) => typeof line.ms === "number"));
});

Deno.test("input with newlines or terminal escapes cannot forge or colour a log line", async () => {
  await using dir = await tempDir();
  const socket = join(dir.path, "b.sock");
  await using berth = spawnBerth(["serve", "--socket", socket, "--state-dir", join(dir.path, "s")]);
  await berth.ready(socket);
  using client = pluginClient(socket);
  const forged = "p\n[ERROR] berth: forged\u001b[31m";
  await client.call("IpamDriver.RequestAddress", { PoolID: forged, Address: "" });
  await client.call("IpamDriver.ReleasePool", { PoolID: forged });
  berth.kill("SIGTERM");
  await berth.exited();
  const stderr = berth.stderr();
  assert.ok(!stderr.includes("\u001b"), "no raw escape reaches the terminal");
  assert.doesNotMatch(stderr, /^\[ERROR\] berth: forged/m, "no forged line");
  assert.match(
    stderr,
    /refused in [\d.]+ ms: Pool "p\\n\[ERROR\] berth: forged\\u001b\[31m" not found/,
  );
});

Deno.test("--log-level warn: no line for calls that went as asked", async () => {
  const stderr = await stderrOf(["--log-level", "warn"]);
  assert.equal(stderr, "", stderr);
});

Deno.test("a bad --log-level or --log-format is a usage error", async () => {
  for (const [flag, value] of [["--log-level", "loud"], ["--log-format", "xml"]]) {
    const { code, stderr } = await runBerth(["serve", flag!, value!]);
    assert.equal(code, 2);
    assert.match(stderr, /must be/);
  }
});

Deno.test("CAP_NET_ADMIN is read from the effective set", () => {
  assert.equal(hasNetAdmin("000001ffffffffff"), true);
  assert.equal(hasNetAdmin("0000000000001000"), true);
  assert.equal(hasNetAdmin("0000000000000fff"), false);
  assert.equal(hasNetAdmin("0000000000000000"), false);
  assert.equal(hasNetAdmin("zz"), false);
  assert.equal(missingPrivileges("Uid:\t0\t0\t0\t0\nCapEff:\t000001ffffffffff\n"), null);
  assert.equal(
    missingPrivileges("Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\n"),
    "Berth needs root (or CAP_NET_ADMIN and write access to /run/docker/plugins): " +
      "this process (uid 1000) lacks CAP_NET_ADMIN",
  );
});

Deno.test("a start without CAP_NET_ADMIN: one line, exit 1, nothing made", async () => {
  await using dir = await tempDir();
  const stateDir = join(dir.path, "new", "state");
  const out = await new Deno.Command("setpriv", {
    args: [
      "--inh-caps=-all",
      "--ambient-caps=-all",
      "--bounding-set=-all",
      Deno.execPath(),
      "run",
      "--allow-all",
      new URL("../../main.ts", import.meta.url).pathname,
      "serve",
      "--socket",
      join(dir.path, "b.sock"),
      "--state-dir",
      stateDir,
      "--admin",
      "off",
    ],
    stdin: "null",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 1, stderr);
  assert.equal(
    stderr,
    "[ERROR] berth: Berth needs root (or CAP_NET_ADMIN and write access to /run/docker/plugins): " +
      "this process (uid 0) lacks CAP_NET_ADMIN\n",
  );
  assert.deepEqual([...Deno.readDirSync(dir.path)], [], "no state dir, no socket");
});

Deno.test("a start refused after it made its state dir leaves none behind", async () => {
  await using dir = await tempDir();
  const socket = join(dir.path, "b.sock");
  await using first = spawnBerth(["serve", "--socket", socket, "--state-dir", join(dir.path, "s")]);
  await first.ready(socket);
  const fresh = join(dir.path, "fresh", "state");
  const { code, stderr } = await runBerth(["serve", "--socket", socket, "--state-dir", fresh]);
  assert.equal(code, 1, stderr);
  assert.match(stderr, /^\[ERROR\] berth: .*b\.sock.*\n$/m);
  assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
  await assert.rejects(Deno.lstat(join(dir.path, "fresh")), Deno.errors.NotFound);
});
