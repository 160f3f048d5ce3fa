// Volumes known to every node of a cluster whose log is a real three-member etcd: made on one
// node, listed and inspected on another, refused there while in use or while its data is in a
// directory of the first node's host; a node cut off from etcd (no quorum) says so within a bound
// and acknowledges nothing, then catches up.
import assert from "node:assert/strict";
import { join } from "node:path";
import { spawnBerth } from "../helpers/berth_process.ts";
import { pluginClient } from "../helpers/plugin_socket.ts";
import { skipUnless } from "../helpers/skip.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { etcdMissing, startEtcdCluster } from "../etcd/_etcd_cluster.ts";
import { callOk, nodeArgs, nodeSocket } from "./_node.ts";

const TEST_NAME = "volumes on etcd: made on one node, known and guarded on the others";

Deno.test({
  name: TEST_NAME,
  ignore: skipUnless(TEST_NAME, etcdMissing()),
  async fn() {
    await using etcd = await startEtcdCluster();
    await using dir = await tempDir("berth-cluster-");
    const socket = (node: string) => nodeSocket(dir.path, node);
    const args = (node: string) =>
      nodeArgs(dir.path, node, { endpoints: etcd.endpoints, name: "voltest" });
    await using a = spawnBerth(args("a"));
    await using b = spawnBerth(args("b"));
    await Promise.all([a.ready(socket("a")), b.ready(socket("b"))]);
    using onA = pluginClient(socket("a"));
    using onB = pluginClient(socket("b"));
    const ok = callOk<Record<string, unknown>>;
    const refused = async (client: typeof onA, method: string, body: unknown, why: RegExp) => {
      const reply = await client.call(method, body);
      assert.notEqual(reply.status, 200, `${method} should be refused`);
      assert.match(String((reply.body as { Err?: string }).Err), why);
    };
    const names = async (client: typeof onA) =>
      ((await ok(client, "VolumeDriver.List", {})).Volumes as { Name: string }[]).map((v) =>
        v.Name
      );
    const until = async (what: string, check: () => Promise<boolean>) => {
      for (let i = 0; i < 100; i++) {
        if (await check()) return;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error(`waited 5 s for ${what}`);
    };

    assert.deepEqual(await ok(onB, "VolumeDriver.Capabilities", {}), {
      Capabilities: { Scope: "global" },
    });
    await ok(onA, "VolumeDriver.Create", { Name: "shared", Opts: { mode: "0750" } });
    await until("b to know the volume", async () => (await names(onB)).includes("shared"));
    const got = await ok(onB, "VolumeDriver.Get", { Name: "shared" });
    assert.match(JSON.stringify(got), /"state":"unmounted","mounts":0/);

    // Its data is a directory on a's host: b neither mounts nor removes it.
    await refused(
      onB,
      "VolumeDriver.Mount",
      { Name: "shared", ID: "m-b" },
      /its data is on node "a"/,
    );
    await ok(onA, "VolumeDriver.Mount", { Name: "shared", ID: "m-a" });
    await until(
      "b to see the mount",
      async () =>
        /"mounts":1/.test(JSON.stringify(await ok(onB, "VolumeDriver.Get", { Name: "shared" }))),
    );
    // Counted per node and per mount ID: b sees a's Mount as a's.
    const held = (await ok(onB, "VolumeDriver.Get", { Name: "shared" })).Volume as {
      Status: Record<string, unknown>;
    };
    assert.deepEqual(held.Status, { state: "mounted", mounts: 1, nodes: { a: 1 } });
    await refused(
      onB,
      "VolumeDriver.Unmount",
      { Name: "shared", ID: "m-a" },
      /its data is on node "a"/,
    );
    await refused(onB, "VolumeDriver.Remove", { Name: "shared" }, /in use by 1 mount on node "a"/);
    await ok(onA, "VolumeDriver.Unmount", { Name: "shared", ID: "m-a" });
    await until(
      "b to see the unmount",
      async () =>
        /"mounts":0/.test(JSON.stringify(await ok(onB, "VolumeDriver.Get", { Name: "shared" }))),
    );
    await refused(onB, "VolumeDriver.Remove", { Name: "shared" }, /its data is on node "a"/);

    // No quorum: a call fails within the bound, says why, and nothing is acknowledged.
    await etcd.kill(1);
    await etcd.kill(2);
    const started = Date.now();
    const cut = await onA.call("VolumeDriver.Create", { Name: "lost", Opts: {} });
    assert.notEqual(cut.status, 200);
    assert.match(String((cut.body as { Err?: string }).Err), /Store unavailable/);
    assert.ok(Date.now() - started < 8000, `failed after ${Date.now() - started} ms`);
    await etcd.restart(1);
    await etcd.restart(2);
    // Back: the calls go through again, and both nodes agree.
    await until(
      "etcd to take appends again",
      async () =>
        (await onA.call("VolumeDriver.Create", { Name: "after", Opts: {} })).status === 200,
    );
    await until("b to catch up", async () => (await names(onB)).includes("after"));
    await ok(onA, "VolumeDriver.Remove", { Name: "shared" });
    await until("b to forget it", async () => !(await names(onB)).includes("shared"));
    assert.ok(!(await names(onA)).includes("lost") || (await names(onB)).includes("lost"));

    // b killed and started again: it reads the cluster's volumes from etcd.
    b.kill("SIGKILL");
    await b.exited();
    await using b2 = spawnBerth(args("b"));
    await b2.ready(socket("b"));
    using onB2 = pluginClient(socket("b"));
    assert.deepEqual(await names(onB2), await names(onA));
  },
});

const SHARED_NAME = "volumes on etcd: a go-plugin backend's volume is used from any node";

Deno.test({
  name: SHARED_NAME,
  ignore: skipUnless(SHARED_NAME, etcdMissing()),
  async fn() {
    await using etcd = await startEtcdCluster();
    await using dir = await tempDir("berth-cluster-");
    // Both nodes launch the same backend over one directory: shared storage, as NFS would be.
    const shared = join(dir.path, "shared");
    const config = join(dir.path, "berth.json");
    const backend = new URL("../goplugin/_ts_backend.ts", import.meta.url).pathname;
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        backends: { nfs: { command: [Deno.execPath(), "run", "--allow-all", backend, shared] } },
      }),
    );
    const socket = (node: string) => nodeSocket(dir.path, node);
    const args = (node: string) =>
      nodeArgs(dir.path, node, { endpoints: etcd.endpoints, name: "sharedtest" }, [
        "--config",
        config,
      ]);
    await using a = spawnBerth(args("a"));
    await using b = spawnBerth(args("b"));
    await Promise.all([a.ready(socket("a")), b.ready(socket("b"))]);
    using onA = pluginClient(socket("a"));
    using onB = pluginClient(socket("b"));
    const ok = callOk<Record<string, unknown>>;
    await ok(onA, "VolumeDriver.Create", { Name: "data", Opts: { backend: "nfs" } });
    // Made on a, mounted on b and on a at once: its storage is reachable from both.
    let mounted: Record<string, unknown> = {};
    for (let i = 0; i < 100; i++) {
      const reply = await onB.call("VolumeDriver.Mount", { Name: "data", ID: "c-b" });
      if (reply.status === 200) {
        mounted = reply.body as Record<string, unknown>;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 50)); // b hears of it
    }
    assert.deepEqual(mounted, { Mountpoint: join(shared, "volumes", "data") });
    await ok(onA, "VolumeDriver.Mount", { Name: "data", ID: "c-a" });
    const status = ((await ok(onA, "VolumeDriver.Get", { Name: "data" })).Volume as {
      Status: unknown;
    }).Status;
    assert.deepEqual(status, { state: "mounted", mounts: 2, nodes: { a: 1, b: 1 } });
    await ok(onB, "VolumeDriver.Unmount", { Name: "data", ID: "c-b" });
    await ok(onA, "VolumeDriver.Unmount", { Name: "data", ID: "c-a" });
    await ok(onB, "VolumeDriver.Remove", { Name: "data" });
    await assert.rejects(Deno.stat(join(shared, "volumes", "data")), Deno.errors.NotFound);
    for (const node of [a, b]) {
      node.kill("SIGTERM");
      assert.equal((await node.exited()).code, 0, node.stderr());
    }
  },
});
