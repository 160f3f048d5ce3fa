// `berth plugin` launched by the real go-plugin library: Debian's go-plugin 1.0.1, built in GOPATH
// mode into the Go hosts in ./host/ and ./volumes_host/, which print one JSON line per run.
// BERTH_MAIN points the test at another checkout's main.ts and proto/ (default: this one's).
import assert from "node:assert/strict";
import { processesMarkedBy } from "../e2e/_dockerd.ts";
import { skipUnless } from "../helpers/skip.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { buildGo, generateBerthV1, goMissing, MAIN_TS } from "./_go.ts";

const TEST_NAME = "go-plugin 1.0.1 host launches berth plugin";

type HostReport = Record<string, unknown>;

/** Runs the host against `main.ts plugin`; its socket and state stay inside `dir` (TMPDIR). */
async function runHost(bin: string, dir: string, hostArgs: string[]): Promise<HostReport> {
  const stateDir = await Deno.makeTempDir({ dir, prefix: "state-" });
  const out = await new Deno.Command(bin, {
    args: [
      ...hostArgs,
      "--",
      Deno.execPath(),
      "run",
      "--allow-all",
      MAIN_TS,
      "plugin",
      "--state-dir",
      stateDir,
    ],
    env: { TMPDIR: dir },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(90_000),
  }).output();
  const [stdout, hostLog] = [out.stdout, out.stderr].map((b) => new TextDecoder().decode(b));
  assert.equal(out.code, 0, `host ${hostArgs.join(" ")} exited ${out.code}:\n${hostLog}`);
  try {
    return { ...JSON.parse(stdout ?? ""), hostLog };
  } catch {
    throw new Error(`host printed no JSON: ${JSON.stringify(stdout)}\n${hostLog}`);
  }
}

function assertGracefulKill(report: HostReport, dir: string): void {
  const context = JSON.stringify(report, null, 2);
  assert.equal(report.exitCode, 0, context);
  assert.equal(report.exitedCleanly, true, context);
  assert.ok(typeof report.killMs === "number" && report.killMs < 2000, context);
  assert.ok(String(report.socket).startsWith(dir + "/"), `socket under TMPDIR: ${context}`);
  assert.equal(report.socketRemoved, true, context);
}

Deno.test({
  name: TEST_NAME,
  ignore: skipUnless(TEST_NAME, goMissing()),
  async fn(t) {
    await using dir = await tempDir("berth-gohost-");
    try {
      const bin = await buildGo(dir.path, "host");

      await t.step("handshake, Ping, health SERVING, and Kill ends it with exit 0", async () => {
        const report = await runHost(bin, dir.path, ["-mode", "ping"]);
        const context = JSON.stringify(report, null, 2);
        assert.equal(report.handshake, "ok", context);
        assert.equal(report.version, 1, context);
        assert.equal(report.network, "unix", context);
        assert.equal(report.ping, "ok", context);
        assert.equal(report.health, "SERVING", context);
        assertGracefulKill(report, dir.path);
        // Berth's hclog JSON lines reach the host's logger at their own level (raw text is debug).
        assert.match(String(report.hostLog), /\[INFO\] +host\.deno: /, context);
      });

      await t.step(
        "without the cookie: one sentence on stderr, nothing on stdout, exit 1",
        async () => {
          const report = await runHost(bin, dir.path, ["-mode", "nocookie"]);
          const context = JSON.stringify(report, null, 2);
          assert.equal(report.exitCode, 1, context);
          assert.equal(report.stdout, "", context);
          const stderr = String(report.stderr).trim();
          assert.equal(stderr.split("\n").length, 1, context);
          assert.match(stderr, /go-plugin host/, context);
        },
      );

      // go-plugin's server.go counts and drops SIGINT: a Ctrl-C in the host's terminal reaches the
      // plugin too (same process group), and the host, not the plugin, decides what it means.
      await t.step("SIGINT, as from the host's terminal, does not stop the plugin", async () => {
        const report = await runHost(bin, dir.path, ["-mode", "ping", "-sigint"]);
        assert.equal(report.pingAfterSigint, "ok", JSON.stringify(report, null, 2));
        assertGracefulKill(report, dir.path);
      });

      await t.step("the host offers 1 and 2: version 1 is chosen", async () => {
        const report = await runHost(bin, dir.path, ["-mode", "versions", "-versions", "2,1"]);
        assert.equal(report.handshake, "ok", JSON.stringify(report, null, 2));
        assert.equal(report.version, 1);
        assertGracefulKill(report, dir.path);
      });

      await t.step("the host offers only 7: the start fails and says why", async () => {
        const report = await runHost(bin, dir.path, ["-mode", "versions", "-versions", "7"]);
        const context = JSON.stringify(report, null, 2);
        assert.equal(report.handshake, "failed", context);
        // go-plugin's own plugins advertise their lowest version, so the host says "Incompatible
        // API version"; a plugin that exits instead is seen by 1.0.1 as an empty handshake line,
        // and only the plugin's stderr (logged by the host) says which versions.
        assert.match(`${report.error}\n${report.stderr}`, /version/i, context);
      });
      let volumesHost = "";
      await t.step("volumes through berth.v1.VolumeDriver survive a SIGKILL of Berth", async () => {
        await generateBerthV1(dir.path);
        volumesHost = await buildGo(dir.path, "volumes_host");
        assertVolumeSteps(await runHost(volumesHost, dir.path, []));
      });

      // go-plugin's AutoMTLS: the host sends its certificate in PLUGIN_CLIENT_CERT and trusts only
      // the one Berth prints in the handshake line; every call below went over that TLS.
      await t.step(
        "AutoMTLS: handshake, Ping, health SERVING, cleartext refused, Kill",
        async () => {
          const report = await runHost(bin, dir.path, ["-mode", "ping", "-automtls"]);
          const context = JSON.stringify(report, null, 2);
          assert.match(String(report.hostLog), /configuring client automatic mTLS/, context);
          assert.equal(report.handshake, "ok", context);
          assert.equal(report.ping, "ok", context);
          assert.equal(report.health, "SERVING", context);
          assert.equal(report.cleartextRefused, true, context);
          assert.match(String(report.stderr), /with AutoMTLS/, context);
          assertGracefulKill(report, dir.path);
        },
      );

      await t.step("AutoMTLS: the volumes run, SIGKILL and relaunch included", async () => {
        assert.ok(volumesHost, "built by the volumes step");
        assertVolumeSteps(await runHost(volumesHost, dir.path, ["-automtls"]));
      });
    } finally {
      // A host killed by the timeout leaves its plugin running: both are marked by the temp dir.
      for (const { pid } of processesMarkedBy([dir.path])) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* already gone */ }
      }
    }
  },
});

/** What volumes_host reports of its run: each call's gRPC code, and the mount after relaunch. */
function assertVolumeSteps(report: HostReport): void {
  const context = JSON.stringify(report, null, 2);
  // Each call is one line in the host's log, at its level, as on the Docker socket.
  const hostLog = String(report.hostLog);
  assert.match(
    hostLog,
    /\[INFO\] +host\.deno: VolumeDriver\.Mount volume "db" \(mount "c1"\): ok in /,
  );
  assert.match(
    hostLog,
    /\[INFO\] +host\.deno: VolumeDriver\.Remove volume "db": refused in [\d.]+ ms: Cannot remove volume "db"/,
  );
  const steps = report.steps as { call: string; code: string; message?: string }[];
  assert.ok(Array.isArray(steps), context);
  assert.deepEqual(steps.map((step) => `${step.call}: ${step.code}`), [
    "Create db: OK",
    "Mount db c1: OK",
    "Remove db while mounted: FailedPrecondition",
    "Get nope: NotFound",
    "Create -bad: InvalidArgument",
    "Unmount db c1: OK",
    "Remove db: OK",
    "Create keep: OK",
    "Mount keep c2: OK",
    "List after relaunch: OK",
  ], context);
  assert.match(steps[2]?.message ?? "", /^Cannot remove volume "db"/, context);
  assert.deepEqual(
    (steps[9] as { reply?: { volumes?: unknown[] } }).reply?.volumes?.map((volume) => {
      const { name, state, mounts } = volume as Record<string, unknown>;
      return { name, state, mounts };
    }),
    [{ name: "keep", state: "mounted", mounts: 1 }],
    context,
  );
  assert.equal(report.exitCode, 0, context);
  assert.ok(typeof report.killMs === "number" && report.killMs < 2000, context);
}
