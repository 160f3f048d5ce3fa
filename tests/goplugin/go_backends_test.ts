// Berth hosting a go-plugin volume backend (--config): a volume made with -o backend=NAME lives
// there; the backend killed with SIGKILL comes back; Berth killed and restarted still routes the
// volume there; at Berth's stop no backend process is left. The backend is a TypeScript stand-in
// speaking go-plugin (tests/goplugin/_ts_backend.ts).
import assert from "node:assert/strict";
import { join } from "node:path";
import { spawnBerth } from "../helpers/berth_process.ts";
import { connectPlugin } from "../helpers/plugin_client.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { alive, until } from "../helpers/wait.ts";

const BACKEND = new URL("./_ts_backend.ts", import.meta.url).pathname;

Deno.test("a volume made with -o backend=NAME lives in that go-plugin backend", async () => {
  await using dir = await tempDir();
  const root = join(dir.path, "tsb");
  const config = join(dir.path, "berth.json");
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      backends: { tsb: { command: [Deno.execPath(), "run", "--allow-all", BACKEND, root] } },
    }),
  );
  const socket = join(dir.path, "berth.sock");
  const args = [
    "serve",
    "--socket",
    socket,
    "--state-dir",
    join(dir.path, "s"),
    "--config",
    config,
  ];
  const backendPid = async () => Number(await Deno.readTextFile(join(root, "pid")));
  const pids: number[] = [];
  {
    await using berth = spawnBerth(args);
    await berth.ready(socket);
    const client = await connectPlugin(socket);
    const call = (method: string, body: unknown) => client.call(`/VolumeDriver.${method}`, body);
    try {
      assert.equal((await call("Create", { Name: "far", Opts: { backend: "tsb" } })).status, 200);
      const mounted = await call("Mount", { Name: "far", ID: "c1" });
      assert.deepEqual(mounted.body, { Mountpoint: join(root, "volumes", "far") });
      const unknown = await call("Create", { Name: "other", Opts: { backend: "nope" } });
      assert.match(unknown.text, /unknown backend \\"nope\\" \(known: tsb\)/);
      assert.equal((await call("Create", { Name: "near" })).status, 200, "the local backend");

      // The backend dies: a call that needs it meanwhile is told which and why; then it is back.
      const first = await backendPid();
      pids.push(first);
      Deno.kill(first, "SIGKILL");
      // A Mount by a second holder needs no backend; a Create does.
      await until("the backend to come back", async () => {
        const reply = await call("Create", { Name: "far2", Opts: { backend: "tsb" } });
        if (reply.status !== 200) assert.match(reply.text, /volume backend \\"tsb\\"/);
        return reply.status === 200;
      });
      assert.equal((await call("Mount", { Name: "far", ID: "c2" })).status, 200);
      pids.push(await backendPid());
      assert.notEqual(pids[1], first);
      assert.match(berth.stderr(), /volume backend "tsb" exited with code 137; starting it again/);
    } finally {
      client.close();
    }
    berth.kill("SIGKILL"); // and Berth dies: the kernel ends its backend with it (pdeathsig)
    await berth.exited();
  }
  await until("the orphaned backend to end", () => Promise.resolve(!pids.some(alive)), 5000)
    .finally(() => {
      for (const pid of pids) if (alive(pid)) Deno.kill(pid, "SIGKILL");
    });
  {
    await using berth = spawnBerth(args);
    await berth.ready(socket);
    const client = await connectPlugin(socket);
    try {
      const get = await client.call("/VolumeDriver.Get", { Name: "far" });
      assert.match(get.text, /"state":"mounted","mounts":2/);
      for (const id of ["c1", "c2"]) {
        const reply = await client.call("/VolumeDriver.Unmount", { Name: "far", ID: id });
        assert.equal(reply.status, 200, reply.text);
      }
      assert.equal((await client.call("/VolumeDriver.Remove", { Name: "far" })).status, 200);
      await assert.rejects(Deno.stat(join(root, "volumes", "far")), Deno.errors.NotFound);
    } finally {
      client.close();
    }
    const last = await backendPid();
    berth.kill("SIGTERM");
    assert.equal((await berth.exited()).code, 0, berth.stderr());
    assert.equal(alive(last), false, "the backend is stopped with Berth");
  }
});

Deno.test("a backend that cannot start does not hold up Berth's start, and callers hear why", async () => {
  await using dir = await tempDir();
  const config = join(dir.path, "berth.json");
  await Deno.writeTextFile(
    config,
    JSON.stringify({ backends: { g: { command: ["/nonexistent"] } } }),
  );
  const socket = join(dir.path, "berth.sock");
  const started = Date.now();
  await using berth = spawnBerth([
    "serve",
    "--socket",
    socket,
    "--state-dir",
    join(dir.path, "s"),
    "--config",
    config,
  ]);
  await berth.ready(socket);
  assert.ok(Date.now() - started < 5000, `ready after ${Date.now() - started} ms`);
  const client = await connectPlugin(socket);
  try {
    const reply = await client.call("/VolumeDriver.Create", { Name: "v1", Opts: { backend: "g" } });
    assert.equal(reply.status, 500);
    const err = String((reply.body as { Err: string }).Err);
    assert.match(err, /volume backend "g" is not running: cannot run \/nonexistent/);
    assert.equal(err.split("volume backend").length, 2, `said once: ${err}`);
  } finally {
    client.close();
  }
});
