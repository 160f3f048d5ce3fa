// Berth hosting a volume backend written in Go on go-plugin's own plugin.Serve (./gobackend/,
// Debian's go-plugin 1.0.1): a volume created through the Docker plugin socket with
// -o backend=gobackend lives in the backend's directory; the backend SIGKILLed in the middle of a
// Mount gives the caller a clear error and comes back, the volume is settled with it (what it had
// half done is undone) and the next call succeeds; after a SIGKILL of Berth no backend is left.
import assert from "node:assert/strict";
import { join } from "node:path";
import { spawnBerth } from "../helpers/berth_process.ts";
import { connectPlugin } from "../helpers/plugin_client.ts";
import { skipUnless } from "../helpers/skip.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { buildGo, generateBerthV1, goMissing } from "./_go.ts";
import { alive, until } from "../helpers/wait.ts";

const TEST_NAME = "a Go backend on plugin.Serve holds volumes and survives a SIGKILL mid-mount";

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

Deno.test({
  name: TEST_NAME,
  ignore: skipUnless(TEST_NAME, goMissing()),
  async fn() {
    await using dir = await tempDir("berth-gobackend-");
    await generateBerthV1(dir.path);
    const bin = await buildGo(dir.path, "gobackend");
    const root = join(dir.path, "held");
    const config = join(dir.path, "berth.json");
    await Deno.writeTextFile(
      config,
      JSON.stringify({ backends: { gobackend: { command: [bin, root] } } }),
    );
    const socket = join(dir.path, "berth.sock");
    const stateDir = join(dir.path, "state");
    const args = ["serve", "--socket", socket, "--state-dir", stateDir, "--config", config];
    const backendPid = async () => Number(await Deno.readTextFile(join(root, "pid")));
    const data = join(root, "volumes", "shelf");
    const mounted = join(root, "mounted", "shelf");
    const pids: number[] = [];

    const berth = spawnBerth(args);
    try {
      await berth.ready(socket);
      using client = await connectPlugin(socket);
      const call = (method: string, body: unknown) => client.call(`/VolumeDriver.${method}`, body);
      const ok = async (method: string, body: unknown) => {
        const reply = await call(method, body);
        assert.equal(reply.status, 200, `${method} ${JSON.stringify(body)}: ${reply.text}`);
        return reply.body as Record<string, unknown>;
      };
      const state = async () =>
        JSON.stringify((await ok("Get", { Name: "shelf" })).Volume).match(
          /"state":"(\w+)","mounts":(\d+)/,
        )?.slice(1).join(" ");

      await ok("Create", { Name: "shelf", Opts: { backend: "gobackend" } });
      assert.ok(await exists(data), "the volume's directory is the backend's");
      assert.deepEqual(await ok("Mount", { Name: "shelf", ID: "c1" }), { Mountpoint: data });
      assert.ok(await exists(mounted));
      await ok("Unmount", { Name: "shelf", ID: "c1" });
      assert.equal(await exists(mounted), false);

      // The backend is killed while a Mount is in its hands: it had marked the volume mounted.
      await Deno.writeTextFile(join(data, "hang"), "");
      pids.push(await backendPid());
      const hanging = call("Mount", { Name: "shelf", ID: "c2" });
      await until("the backend to hang in Mount", () => exists(join(root, "hanging")));
      Deno.kill(pids[0]!, "SIGKILL");
      const refused = await hanging;
      assert.notEqual(refused.status, 200);
      assert.match(
        String((refused.body as { Err?: string }).Err),
        /^Cannot mount volume "shelf": volume backend "gobackend" (exited|stopped answering) during Mount/,
      );
      await Deno.remove(join(data, "hang"));

      // Once it is back, Berth settles the volume with it: what it half did is undone, so no
      // holder is counted that dockerd never heard of.
      assert.equal(await state(), "unmounted 0");
      assert.equal(await exists(mounted), false, "the half-done mount was undone");
      pids.push(await backendPid());
      assert.notEqual(pids[1], pids[0], "a new backend process");

      // The next calls succeed, and the log agrees with the backend.
      assert.deepEqual(await ok("Mount", { Name: "shelf", ID: "c3" }), { Mountpoint: data });
      assert.equal(await state(), "mounted 1");
      assert.ok(await exists(mounted));
      await ok("Unmount", { Name: "shelf", ID: "c3" });
      await ok("Create", { Name: "kept", Opts: { backend: "gobackend" } });
      await ok("Remove", { Name: "shelf" });
      assert.equal(await exists(data), false);
      assert.match(berth.stderr(), /volume backend "gobackend" exited with code 137/);

      // Berth dies with SIGKILL: the kernel ends its backend too (no orphan is left).
      berth.kill("SIGKILL");
      await berth.exited();
      await until("the orphaned backend to end", () => !alive(pids[1]!), 5000);
    } finally {
      await berth[Symbol.asyncDispose]();
      for (const pid of pids) if (alive(pid)) Deno.kill(pid, "SIGKILL");
    }

    // Berth again: the backend's volume is still routed to it and found there.
    await using again = spawnBerth(args);
    await again.ready(socket);
    using client = await connectPlugin(socket);
    const get = await client.call("/VolumeDriver.Get", { Name: "kept" });
    assert.match(get.text, /"Mountpoint":"[^"]*\/held\/volumes\/kept"/);
    const removed = await client.call("/VolumeDriver.Remove", { Name: "kept" });
    assert.equal(removed.status, 200, removed.text);
    const last = await backendPid();
    again.kill("SIGTERM");
    assert.equal((await again.exited()).code, 0, again.stderr());
    assert.equal(alive(last), false, "the backend is stopped with Berth");
  },
});
