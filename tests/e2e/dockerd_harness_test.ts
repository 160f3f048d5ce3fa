// Tests of the e2e harness itself: a private dockerd runs busybox containers, two run side by side,
// and stop() leaves no process, mount or directory behind, even after dockerd was SIGKILLed.

import assert from "node:assert/strict";
import {
  type Dockerd,
  mountsUnder,
  processesMarkedBy,
  requireOrSkip,
  shimSocketOf,
  startDockerd,
} from "./_dockerd.ts";
import { exists } from "../helpers/exists.ts";

function log(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`[dockerd harness] ${line}\n`));
}

function isGone(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

function assertCleanedUp(dockerd: Dockerd): void {
  assert.ok(isGone(dockerd.pid), `dockerd pid ${dockerd.pid} still runs`);
  assert.deepEqual(processesMarkedBy([dockerd.dir + "/"]), [], "processes left under the roots");
  assert.deepEqual(mountsUnder(dockerd.dir), [], "mounts left");
  assert.ok(!exists(dockerd.dir), `${dockerd.dir} still exists`);
  const cgroups = ["", ...Array.from(Deno.readDirSync("/sys/fs/cgroup"), (e) => e.name)]
    .map((tree) => `/sys/fs/cgroup/${tree}/${dockerd.cgroupParent}`)
    .filter(exists);
  assert.deepEqual(cgroups, [], "cgroups left");
}

const RUN_ISOLATED = ["run", "--rm", "--network", "none"];

async function runEcho(dockerd: Dockerd): Promise<string> {
  return (await dockerd.docker([...RUN_ISOLATED, dockerd.image, "sh", "-c", "echo hi"])).stdout;
}

const NAME_RUNS = "startDockerd runs a busybox container with no network and cleans up on stop";
Deno.test({ name: NAME_RUNS, ignore: requireOrSkip(NAME_RUNS) }, async () => {
  const dockerd = await startDockerd({ log });
  try {
    assert.equal(await runEcho(dockerd), "hi\n");
    const applets = "ping ip sleep cat echo ls mkdir wc test true";
    const script = `for a in ${applets}; do command -v $a >/dev/null || echo missing $a; done; ` +
      "ip -o link | wc -l; ping -c 1 -W 1 127.0.0.1 >/dev/null && echo pinged";
    const out = await dockerd.docker([...RUN_ISOLATED, dockerd.image, "sh", "-c", script]);
    assert.equal(out.stdout, "1\npinged\n", "all applets, only lo, loopback answers");
    assert.match(dockerd.logTail(200), /API listen on/);
  } finally {
    await dockerd.stop();
  }
  assertCleanedUp(dockerd);
});

const NAME_TWO = "startDockerd runs two daemons side by side without sharing containers";
Deno.test({ name: NAME_TWO, ignore: requireOrSkip(NAME_TWO) }, async () => {
  const started = await Promise.allSettled([startDockerd({ log }), startDockerd({ log })]);
  const daemons = started.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
  try {
    for (const s of started) if (s.status === "rejected") throw s.reason;
    const [a, b] = daemons as [Dockerd, Dockerd];
    assert.notEqual(a.socket, b.socket);
    const run = ["run", "-d", "--name", "same", "--network", "none"];
    const [idA, idB] = await Promise.all(
      [a, b].map(async (d) => (await d.docker([...run, d.image, "sleep", "300"])).stdout.trim()),
    );
    assert.notEqual(idA, idB);
    for (const [d, id] of [[a, idA], [b, idB]] as const) {
      const ps = await d.docker(["ps", "-q", "--no-trunc"]);
      assert.equal(ps.stdout.trim(), id, "each daemon sees only its own container");
    }
    assert.deepEqual(await Promise.all([runEcho(a), runEcho(b)]), ["hi\n", "hi\n"]);
  } finally {
    await Promise.all(daemons.map((d) => d.stop()));
  }
  daemons.forEach(assertCleanedUp);
});

const NAME_KILLED =
  "Dockerd.stop cleans up containerd, shims and mounts after dockerd was SIGKILLed";
Deno.test({ name: NAME_KILLED, ignore: requireOrSkip(NAME_KILLED) }, async () => {
  const dockerd = await startDockerd({ log });
  const shimSockets: string[] = [];
  try {
    await dockerd.docker(["run", "-d", "--network", "none", dockerd.image, "sleep", "300"]);
    Deno.kill(dockerd.pid, "SIGKILL");
    const leftovers = processesMarkedBy([dockerd.dir + "/"]);
    assert.ok(
      leftovers.some((p) => p.cmdline.startsWith("sleep 300")),
      "the container outlives it",
    );
    const sockets = await Promise.all(leftovers.map((p) => shimSocketOf(p.cmdline)));
    shimSockets.push(...sockets.filter((s) => s !== undefined));
    assert.equal(shimSockets.length, 1, "one shim");
    assert.ok(Deno.statSync(shimSockets[0]!).isSocket);
  } finally {
    await dockerd.stop();
  }
  assertCleanedUp(dockerd);
  for (const socket of shimSockets) {
    assert.throws(() => Deno.statSync(socket), Deno.errors.NotFound);
  }
});

const NAME_FAILS = "startDockerd fails with the daemon's log tail and cleans up when dockerd exits";
Deno.test({ name: NAME_FAILS, ignore: requireOrSkip(NAME_FAILS) }, async () => {
  const bin = await Deno.makeTempDir({ prefix: "berth-fake-dockerd-" });
  const path = Deno.env.get("PATH") ?? "";
  const lines: string[] = [];
  try {
    const script = "#!/bin/sh\necho 'fake dockerd: cannot start' >&2\nexit 3\n";
    await Deno.writeTextFile(`${bin}/dockerd`, script, { mode: 0o755 });
    Deno.env.set("PATH", `${bin}:${path}`);
    await assert.rejects(
      startDockerd({ log: (line) => lines.push(line) }),
      /Failed to start dockerd: exited with code 3; log tail:\nfake dockerd: cannot start/,
    );
  } finally {
    Deno.env.set("PATH", path);
    await Deno.remove(bin, { recursive: true });
  }
  const dir = lines.join("\n").match(/ in (\/\S+)/)?.[1];
  assert.ok(dir !== undefined && !exists(dir), `temp dir ${dir} removed`);
});
