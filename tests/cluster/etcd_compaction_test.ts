// The log in a real three-member etcd stays short: two Berth nodes put each actor's records
// into its snapshot every --snapshot-every records and delete a finished actor whole, and a node
// SIGKILLed and started again, or a new one, reads the snapshots and the few records after them
// to the same state: no address lost or handed out twice.
import assert from "node:assert/strict";
import { spawnBerth } from "../helpers/berth_process.ts";
import { pluginClient } from "../helpers/plugin_socket.ts";
import { skipUnless } from "../helpers/skip.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { until } from "../helpers/wait.ts";
import { etcdMissing, startEtcdCluster } from "../etcd/_etcd_cluster.ts";
import { callOk, nodeArgs, nodeSocket } from "./_node.ts";

const TEST_NAME = "etcd log compaction: snapshots per actor, finished actors deleted, same state";
const CLUSTER = "squash";
const EVERY = 16;

Deno.test({
  name: TEST_NAME,
  ignore: skipUnless(TEST_NAME, etcdMissing()),
  async fn() {
    await using etcd = await startEtcdCluster();
    await using dir = await tempDir("berth-compaction-");
    const args = (node: string) =>
      nodeArgs(dir.path, node, { endpoints: etcd.endpoints, name: CLUSTER }, [
        "--snapshot-every",
        String(EVERY),
      ]);
    /** The keys of the cluster in etcd, under log/ and snapshots/. */
    const keys = async (under: string) => {
      const out = await etcd.etcdctl([
        "get",
        "--prefix",
        "--keys-only",
        `/berth/${CLUSTER}/${under}`,
      ]);
      return out.split("\n").filter((line) => line !== "");
    };
    await using a = spawnBerth(args("a"));
    await using b = spawnBerth(args("b"));
    await Promise.all([a.ready(nodeSocket(dir.path, "a")), b.ready(nodeSocket(dir.path, "b"))]);
    using onA = pluginClient(nodeSocket(dir.path, "a"));
    using onB = pluginClient(nodeSocket(dir.path, "b"));
    const ok = callOk;

    // 300 addresses from one pool, asked of both nodes: 301 records of one actor.
    const { PoolID: pool } = await ok(onA, "IpamDriver.RequestPool", {
      AddressSpace: "GlobalDefault",
      Pool: "198.18.80.0/23",
    });
    const given = await Promise.all(
      Array.from(
        { length: 300 },
        (_, i) =>
          ok(i % 2 ? onA : onB, "IpamDriver.RequestAddress", { PoolID: pool, Address: "" })
            .then((reply) => reply.Address!),
      ),
    );
    assert.equal(new Set(given).size, 300);
    // Volumes made and removed across the nodes: nothing of them may stay in etcd.
    for (let i = 0; i < 10; i++) {
      await ok(i % 2 ? onA : onB, "VolumeDriver.Create", { Name: `gone-${i}`, Opts: {} });
      // A local directory is removed on its own node.
      await ok(i % 2 ? onA : onB, "VolumeDriver.Remove", { Name: `gone-${i}` });
    }
    await ok(onA, "VolumeDriver.Create", { Name: "kept", Opts: {} });
    // Compaction runs after the answer; one that lost a race to the other node is tried again
    // a moment later. Each node compacts on its own records: fewer than two rounds' worth stay.
    const poolEvents = async () =>
      (await keys("log/events/")).filter((key) => key.includes("pool%2F198.18.80.0%2F23/"));
    await until(
      "the pool's records to be compacted",
      async () => (await poolEvents()).length < 2 * EVERY,
    ).catch(async (error) => {
      throw new Error(`${error.message}: ${(await poolEvents()).length} left`);
    });
    const events = await keys("log/events/");
    assert.deepEqual(events.filter((key) => key.includes("gone-")), [], "removed volumes' records");
    assert.deepEqual((await keys("log/heads/")).filter((key) => key.includes("gone-")), []);
    assert.deepEqual(await keys("snapshots/"), [
      `/berth/${CLUSTER}/snapshots/pool%2F198.18.80.0%2F23`,
    ]);

    // b SIGKILLed and started again, and a new node c: both read the same state back.
    b.kill("SIGKILL");
    await b.exited();
    await using b2 = spawnBerth(args("b"));
    await using c = spawnBerth(args("c"));
    await Promise.all([b2.ready(nodeSocket(dir.path, "b")), c.ready(nodeSocket(dir.path, "c"))]);
    assert.match(
      b2.stderr(),
      /etcd at revision \d+: 1 actor snapshots \+ \d+ replayed; 1 volumes, 0 networks, 0 endpoints, 1 pools/,
    );
    using onB2 = pluginClient(nodeSocket(dir.path, "b"));
    using onC = pluginClient(nodeSocket(dir.path, "c"));
    for (const client of [onB2, onC]) {
      // Every address handed out is known: asking for one again is refused.
      for (const taken of [given[0]!, given[150]!, given[299]!]) {
        const reply = await client.call("IpamDriver.RequestAddress", {
          PoolID: pool,
          Address: taken.split("/")[0],
        });
        assert.notEqual(reply.status, 200, `${taken} handed out again: ${reply.text}`);
      }
      const list = await ok(client, "VolumeDriver.List", {}) as unknown as {
        Volumes: { Name: string }[];
      };
      assert.deepEqual(list.Volumes.map((volume) => volume.Name), ["kept"]);
    }
    // And the next free ones, asked of all three at once, are new and distinct.
    const more = await Promise.all(
      Array.from(
        { length: 30 },
        (_, i) =>
          ok([onA, onB2, onC][i % 3]!, "IpamDriver.RequestAddress", { PoolID: pool, Address: "" })
            .then((reply) => reply.Address!),
      ),
    );
    assert.equal(new Set([...given, ...more]).size, 330);
    // A volume removed during compaction's life comes back under the same name on any node.
    await ok(onC, "VolumeDriver.Create", { Name: "gone-3", Opts: {} });
    await ok(onA, "VolumeDriver.Get", { Name: "gone-3" });
    for (const node of [a, b2, c]) assert.doesNotMatch(node.stderr(), /WARN|Cannot compact/);

    // A cluster an earlier Berth wrote (events counted per actor, no snapshots) is not read as
    // empty: the start is refused in one line that says what to do.
    await etcd.etcdctl(["put", "/berth/old/events/pool%2Fx/1", "{}"]);
    await using old = spawnBerth(
      nodeArgs(dir.path, "d", { endpoints: etcd.endpoints, name: "old" }),
    );
    const { code } = await old.exited();
    assert.equal(code, 1);
    assert.match(
      old.stderr(),
      /\n\[ERROR\] berth: etcd holds cluster "old" in the layout of an earlier Berth .* etcdctl del --prefix \/berth\/old\/events\/ \(and heads\/\)\n$/,
    );
  },
});
