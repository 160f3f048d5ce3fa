// A supervised go-plugin backend (`berth plugin` standing in for one) is killed with SIGKILL and
// comes back; while it is down a call hears why; at stop no process is left.
import assert from "node:assert/strict";
import { join } from "node:path";
import { BackendDownError, superviseBackend } from "../../../src/backends/goplugin/supervisor.ts";
import { tempDir } from "../../helpers/temp_dir.ts";
import { berthAsBackend } from "../../goplugin/_plugin_child.ts";
import { alive } from "../../helpers/wait.ts";

Deno.test("a backend that dies is started again, and none is left after stop", async () => {
  await using dir = await tempDir();
  const warnings: string[] = [];
  const supervisor = superviseBackend("berthself", berthAsBackend(dir.path), {
    log: () => {},
    warn: (message) => warnings.push(message),
    backoffMs: { first: 50, max: 400 },
  });
  const pids: number[] = [];
  try {
    assert.throws(() => supervisor.current(), BackendDownError, "down until its first handshake");
    const first = await supervisor.ready();
    pids.push(first.pid);
    Deno.kill(first.pid, "SIGKILL");
    await first.exited;
    assert.throws(
      () => supervisor.current(),
      /volume backend "berthself" is not running: it exited/,
    );
    const second = await supervisor.ready();
    pids.push(second.pid);
    assert.notEqual(second.pid, first.pid);
    assert.equal(supervisor.current(), second);
    assert.equal(supervisor.launches, 2);
    assert.match(warnings.join("\n"), /exited with code 137; starting it again/);
  } finally {
    await supervisor.stop();
  }
  for (const pid of pids) assert.equal(alive(pid), false, `process ${pid} is gone`);
  assert.throws(() => supervisor.current(), BackendDownError);
});

Deno.test("a backend that cannot start is tried again with backoff, and told to callers", async () => {
  await using dir = await tempDir();
  const warnings: string[] = [];
  const supervisor = superviseBackend("broken", { command: [join(dir.path, "nope")], env: {} }, {
    log: () => {},
    warn: (message) => warnings.push(message),
    backoffMs: { first: 20, max: 80 },
  });
  await new Promise((resolve) => setTimeout(resolve, 400));
  await supervisor.stop();
  assert.ok(
    supervisor.launches >= 3 && supervisor.launches <= 12,
    `${supervisor.launches} launches`,
  );
  assert.match(warnings[0]!, /volume backend "broken": cannot run .*; trying again in 0.02 s/);
  assert.match(warnings.at(-1)!, /trying again in 0.08 s/, "the wait doubles up to its cap");
});
