// A value in the cluster's etcd prefix that Berth did not write: the running nodes say they ignore
// it and go on, with the actor's version right (counted when its transaction moved the actor's
// head, as an append does, and not otherwise), and a node starting refuses, in one line, to build
// its state on a log it cannot read whole.
import assert from "node:assert/strict";
import { spawnBerth } from "../helpers/berth_process.ts";
import { pluginClient } from "../helpers/plugin_socket.ts";
import { skipUnless } from "../helpers/skip.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { until } from "../helpers/wait.ts";
import { etcdMissing, startEtcdCluster } from "../etcd/_etcd_cluster.ts";
import { nodeArgs, nodeSocket } from "./_node.ts";

const TEST_NAME =
  "etcd: a record Berth did not write is ignored by running nodes, refused at start";
const CLUSTER = "foreign";
const POOL = "198.18.85.0/24";
const ACTOR_KEY = encodeURIComponent(`pool/${POOL}`);

Deno.test({
  name: TEST_NAME,
  ignore: skipUnless(TEST_NAME, etcdMissing()),
  async fn() {
    await using etcd = await startEtcdCluster();
    await using dir = await tempDir("berth-foreign-");
    const etcdctl = (args: string[], stdin?: string) => etcd.etcdctl(args, stdin);
    const headKey = `/berth/${CLUSTER}/log/heads/${ACTOR_KEY}`;
    const eventKey = (after: number) =>
      `/berth/${CLUSTER}/log/events/${ACTOR_KEY}/${String(after).padStart(20, "0")}.000`;
    const headRevision = async () =>
      Number(JSON.parse(await etcdctl(["get", "-w", "json", headKey])).kvs[0].mod_revision);

    const args = (node: string) =>
      nodeArgs(dir.path, node, { endpoints: etcd.endpoints, name: CLUSTER });
    await using a = spawnBerth(args("a"));
    await using b = spawnBerth(args("b"));
    await Promise.all([a.ready(nodeSocket(dir.path, "a")), b.ready(nodeSocket(dir.path, "b"))]);
    using onA = pluginClient(nodeSocket(dir.path, "a"));
    using onB = pluginClient(nodeSocket(dir.path, "b"));
    const address = async (client: typeof onA) => {
      const started = performance.now();
      const reply = await client.call("IpamDriver.RequestAddress", { PoolID: POOL, Address: "" });
      assert.equal(reply.status, 200, reply.text);
      // No conflict waited on: a version gone wrong would cost 5 s per try.
      const ms = performance.now() - started;
      assert.ok(ms < 2_000, `RequestAddress took ${Math.round(ms)} ms`);
      return (reply.body as { Address: string }).Address;
    };
    const pool = await onA.call("IpamDriver.RequestPool", { AddressSpace: "x", Pool: POOL });
    assert.equal(pool.status, 200, pool.text);
    assert.equal(await address(onA), "198.18.85.1/24");

    // Written as an append is (event and head in one transaction), but not JSON Berth reads.
    const head = await headRevision();
    await etcdctl(
      ["txn"],
      `mod("${headKey}") = "${head}"\n\nput ${eventKey(head)} "not json"\nput ${headKey} "1"\n\n\n`,
    );
    await until(
      "both nodes to say they ignore it",
      () => [a, b].every((node) => /Ignored record \d+ of another node: /.test(node.stderr())),
    );
    // One line each, the reason and no stack.
    for (const node of [a, b]) {
      const line = node.stderr().split("\n").find((l) => l.includes("Ignored record"))!;
      assert.match(line, /: not a record Berth wrote: .*not valid JSON/);
      assert.doesNotMatch(line, / at (file|ext):/);
    }
    // It moved the head: it counts, and the next appends name it.
    assert.equal(await address(onB), "198.18.85.2/24");
    assert.equal(await address(onA), "198.18.85.3/24");

    // Put beside the log without moving the head: ignored, not counted.
    const stray = await headRevision();
    await etcdctl(["put", eventKey(stray + 1000), '{"actor": "pool/elsewhere"}']);
    assert.equal(await address(onB), "198.18.85.4/24");
    await until(
      "both nodes to say they ignore the stray",
      () =>
        [a, b].every((node) =>
          /Ignored pool\/198\.18\.85\.0\/24 event at \d+ in etcd: not a record Berth wrote: it names actor pool\/elsewhere/
            .test(node.stderr())
        ),
    );
    assert.equal(await address(onA), "198.18.85.5/24");

    // A node starting will not build its state on it; the line says which record.
    await using c = spawnBerth(args("c"));
    assert.equal((await c.exited()).code, 1);
    assert.match(
      c.stderr(),
      /\n\[ERROR\] berth: the record of pool\/198\.18\.85\.0\/24 at revision \d+ in etcd is not one Berth wrote \(.*\); .* etcdctl get --prefix \/berth\/foreign\/log\/events\/pool%2F198\.18\.85\.0%2F24\/ and delete it if it is not Berth.s\n$/,
    );
  },
});
