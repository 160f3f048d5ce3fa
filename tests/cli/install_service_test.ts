// `berth install-service` writes units systemd accepts, and an inherited socket (systemd's socket
// activation, here through systemd's own systemd-socket-activate) is served like Berth's own.
import assert from "node:assert/strict";
import { join } from "node:path";
import { envOf, renderUnits, unitQuoted } from "../../src/cli/install_service.ts";
import { runBerth } from "../helpers/berth_process.ts";
import { pluginClient } from "../helpers/plugin_socket.ts";
import { onPath, skipUnless } from "../helpers/skip.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

Deno.test("unit values are quoted as systemd reads them", () => {
  assert.equal(unitQuoted("BERTH_NAME=b"), '"BERTH_NAME=b"');
  assert.equal(unitQuoted('a "b" \\ 100%'), '"a \\"b\\" \\\\ 100%%"');
  assert.throws(() => unitQuoted("a\nb"), /line break/);
  assert.equal(envOf("pool-size"), "BERTH_POOL_SIZE");
  assert.equal(envOf("state-dir"), "BERTH_STATE_DIR");
});

Deno.test("the service starts before dockerd, restarts always and carries the options", () => {
  const { service, socket } = renderUnits([["name", "b2"], ["log-level", "debug"]], {
    name: "b2",
    socket: "/run/docker/plugins/b2.sock",
    socketActivation: false,
    exec: ["/usr/bin/deno", "run", "--allow-all", "/opt/berth $HOME 100%/main.ts", "serve"],
  });
  assert.equal(service.name, "berth-b2.service");
  assert.equal(socket, undefined);
  for (
    const line of [
      "Before=docker.service",
      "Restart=always",
      'Environment="BERTH_NAME=b2"',
      'Environment="BERTH_LOG_LEVEL=debug"',
      'ExecStart=/usr/bin/deno run --allow-all "/opt/berth $$HOME 100%%/main.ts" serve',
      "WantedBy=multi-user.target docker.service",
    ]
  ) assert.ok(service.text.split("\n").includes(line), `${line} in:\n${service.text}`);
});

Deno.test("install-service --print writes nothing; without it, both units land", async () => {
  await using dir = await tempDir();
  const units = join(dir.path, "units");
  const printed = await runBerth([
    "install-service",
    "--print",
    "--unit-dir",
    units,
    "--state-dir",
    "relative/state",
  ]);
  assert.equal(printed.code, 0, printed.stderr);
  assert.match(printed.stdout, /^# would write .*\/berth\.service$/m);
  assert.match(
    printed.stdout,
    new RegExp(`^Environment="BERTH_STATE_DIR=${Deno.cwd()}/relative/state"$`, "m"),
  );
  await assert.rejects(Deno.stat(units), Deno.errors.NotFound);

  const bad = await runBerth(["install-service", "--unit-dir", units, "--pool-size", "99"]);
  assert.equal(bad.code, 2, "checked as serve checks");
  await assert.rejects(Deno.stat(units), Deno.errors.NotFound);

  const wrote = await runBerth([
    "install-service",
    "--unit-dir",
    units,
    "--name",
    "svc",
    "--socket-activation",
  ]);
  assert.equal(wrote.code, 0, wrote.stderr);
  assert.match(
    wrote.stdout,
    /systemctl daemon-reload && systemctl enable --now berth-svc\.socket berth-svc\.service/,
  );
  const service = await Deno.readTextFile(join(units, "berth-svc.service"));
  const socket = await Deno.readTextFile(join(units, "berth-svc.socket"));
  assert.match(service, /^Requires=berth-svc\.socket$/m);
  assert.match(service, / --cached-only /);
  assert.match(socket, /^ListenStream=\/run\/docker\/plugins\/svc\.sock$/m);
  if (onPath("systemd-analyze")) {
    const verify = await new Deno.Command("systemd-analyze", {
      args: ["verify", join(units, "berth-svc.service"), join(units, "berth-svc.socket")],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const said = new TextDecoder().decode(verify.stderr);
    assert.equal(verify.code, 0, said);
    assert.doesNotMatch(said, /berth-svc/, said);
  }
});

const ACTIVATION = "Berth serves the plugin socket systemd passed it";
Deno.test({
  name: ACTIVATION,
  ignore: skipUnless(
    ACTIVATION,
    onPath("systemd-socket-activate")
      ? null
      : "systemd-socket-activate missing (apt-get install systemd)",
  ),
  async fn() {
    await using dir = await tempDir();
    const socket = join(dir.path, "activated.sock");
    // It listens, then execs Berth with LISTEN_FDS=1 and LISTEN_PID set to Berth's own pid.
    const child = new Deno.Command("systemd-socket-activate", {
      args: [
        "-l",
        socket,
        "-E",
        "BERTH_ADMIN=off",
        Deno.execPath(),
        "run",
        "--allow-all",
        MAIN,
        "serve",
        "--socket",
        join(dir.path, "unused.sock"),
        "--state-dir",
        join(dir.path, "state"),
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = (async () => {
      let text = "";
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) text += chunk;
      return text;
    })();
    try {
      // The socket accepts at once; the first call waits in its backlog while Berth starts.
      for (let i = 0; i < 100 && !(await Deno.lstat(socket).then(() => true, () => false)); i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      using client = pluginClient(socket);
      const created = await client.call("VolumeDriver.Create", { Name: "early" });
      assert.equal(created.status, 200, created.text);
      const big = await client.call("VolumeDriver.Create", {
        Name: "x".repeat(200),
        Opts: { mode: "0700" },
      });
      assert.equal(big.status, 200, big.text);
      const list = await client.call("VolumeDriver.List", {});
      assert.equal((list.body as { Volumes: unknown[] }).Volumes.length, 2);
      await assert.rejects(Deno.lstat(join(dir.path, "unused.sock")), Deno.errors.NotFound);
    } finally {
      child.kill("SIGTERM");
    }
    const status = await child.status;
    const said = await stderr;
    assert.equal(status.code, 0, said);
    assert.match(said, /serving the socket systemd passed \(fd 3\)/);
    // The socket file is systemd's: Berth leaves it.
    assert.ok((await Deno.lstat(socket)).isSocket);
  },
});
