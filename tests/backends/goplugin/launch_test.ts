// Berth as a go-plugin host: launching a backend, checking its handshake line and health, passing
// its stderr on, and stopping it. `berth plugin` itself stands in for a backend here (it is a real
// go-plugin plugin); scripts stand in for backends that misbehave.
import assert from "node:assert/strict";
import { join } from "node:path";
import { BackendLaunchError, launchBackend } from "../../../src/backends/goplugin/launch.ts";
import { tempDir } from "../../helpers/temp_dir.ts";
import { berthAsBackend } from "../../goplugin/_plugin_child.ts";

Deno.test("a go-plugin backend is launched, checked, heard and stopped with exit 0", async () => {
  await using dir = await tempDir();
  const heard: string[] = [];
  const backend = await launchBackend("berthself", berthAsBackend(dir.path), {
    log: (name, line) => heard.push(`${name}: ${line}`),
  });
  assert.equal(backend.handshake.app, 1);
  assert.equal(backend.handshake.network, "unix");
  assert.equal(join(backend.handshake.address, ".."), dir.path);
  const started = Date.now();
  await backend.stop();
  assert.equal(await backend.exited, 0, "stopped by Shutdown, not by SIGKILL");
  assert.ok(Date.now() - started < 2000);
  assert.ok(heard.some((line) => /^berthself: \{"@level":"info"/.test(line)), heard.join("\n"));
});

Deno.test("a backend that misbehaves at start is refused with its name and why", async (t) => {
  await using dir = await tempDir();
  const script = async (name: string, body: string) => {
    const path = join(dir.path, name);
    await Deno.writeTextFile(path, `#!/bin/sh\n${body}\n`);
    await Deno.chmod(path, 0o755);
    return path;
  };
  const cases: [string, string, RegExp, number?][] = [
    [
      "banner",
      'echo "Welcome to my backend"; sleep 30',
      /"bad": not a go-plugin handshake line: "Welcome to my backend"/,
    ],
    ["netrpc", 'echo "1|1|unix|/tmp/x|netrpc|"; sleep 30', /protocol is not grpc/],
    [
      "version",
      'echo "1|9|unix|/tmp/x|grpc|"; sleep 30',
      /app protocol version is not one offered \(1\)/,
    ],
    ["exits", 'echo "oops" >&2; exit 3', /exited before its handshake line \(exit 3\)/],
    ["silent", "sleep 30", /no handshake line within 0.5 s/, 500],
    ["deaf", 'echo "1|1|unix|/nonexistent/sock|grpc|"; sleep 30', /no answer to its health check/],
  ];
  for (const [label, body, expected, startTimeoutMs] of cases) {
    await t.step(label, async () => {
      const path = await script(label, body);
      const started = Date.now();
      await assert.rejects(
        launchBackend("bad", { command: [path], env: {} }, {
          log: () => {},
          ...(startTimeoutMs ? { startTimeoutMs } : {}),
        }),
        (error: Error) => error instanceof BackendLaunchError && expected.test(error.message),
      );
      assert.ok(Date.now() - started < 10_000, "and the process is not waited on for long");
    });
  }
  await t.step("a program that is not there", async () => {
    await assert.rejects(
      launchBackend("gone", { command: [join(dir.path, "nope")], env: {} }, { log: () => {} }),
      /volume backend "gone": cannot run/,
    );
  });
});
