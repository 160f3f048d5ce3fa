// Two Berth processes, nodes of one cluster whose log is a real three-member etcd: addresses and
// pools asked of both at once are never handed out twice, an address released on one node is
// reused by the other, a SIGKILLed etcd member loses nothing acknowledged, and a node restarted
// finds the cluster's state.
import assert from "node:assert/strict";
import { join } from "node:path";
import { spawnBerth } from "../helpers/berth_process.ts";
import { pluginClient } from "../helpers/plugin_socket.ts";
import { skipUnless } from "../helpers/skip.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { etcdMissing, startEtcdCluster } from "../etcd/_etcd_cluster.ts";
import { callOk, nodeArgs } from "./_node.ts";

const TEST_NAME = "IPAM on etcd: two nodes never hand out an address or a pool twice";

Deno.test({
  name: TEST_NAME,
  ignore: skipUnless(TEST_NAME, etcdMissing()),
  async fn() {
    await using etcd = await startEtcdCluster();
    await using dir = await tempDir("berth-cluster-");
    const args = (node: string) =>
      nodeArgs(dir.path, node, { endpoints: etcd.endpoints, name: "ipamtest" });
    await using a = spawnBerth(args("a"));
    await using b = spawnBerth(args("b"));
    await Promise.all([a.ready(join(dir.path, "a.sock")), b.ready(join(dir.path, "b.sock"))]);
    const clientA = pluginClient(join(dir.path, "a.sock"));
    const clientB = pluginClient(join(dir.path, "b.sock"));
    try {
      const ok = callOk;
      // Without --advertise-address networks are not served on etcd: unknown methods.
      const network = await clientA.call("NetworkDriver.CreateNetwork", { NetworkID: "x" });
      assert.equal(network.status, 404);

      const { PoolID: pool } = await ok(clientA, "IpamDriver.RequestPool", {
        AddressSpace: "GlobalDefault",
        Pool: "198.18.40.0/24",
      });
      const asked = Promise.all(
        Array.from(
          { length: 200 },
          (_, i) =>
            ok(i % 2 ? clientA : clientB, "IpamDriver.RequestAddress", {
              PoolID: pool,
              Address: "",
            }),
        ),
      );
      asked.catch(() => {}); // awaited below, after the member's kill
      // A member dies under the load: the other two keep the quorum.
      await new Promise((resolve) => setTimeout(resolve, 50));
      await etcd.kill(0);
      const given = (await asked).map((reply) => reply.Address!);
      assert.equal(new Set(given).size, 200, "no address handed out twice");
      await etcd.restart(0);

      // Pools without a subnet, asked of both nodes at once: none overlaps.
      const pools = await Promise.all(
        Array.from(
          { length: 20 },
          (_, i) =>
            ok(i % 2 ? clientA : clientB, "IpamDriver.RequestPool", {
              AddressSpace: "GlobalDefault",
              Pool: "",
            }),
        ),
      );
      assert.equal(new Set(pools.map((reply) => reply.Pool)).size, 20, "no pool twice");

      // Released on either node, free on both: the lowest address comes back on the other.
      await Promise.all(
        given.map((address, i) =>
          ok(i % 2 ? clientB : clientA, "IpamDriver.ReleaseAddress", {
            PoolID: pool,
            Address: address,
          })
        ),
      );
      const again = await ok(clientB, "IpamDriver.RequestAddress", { PoolID: pool, Address: "" });
      assert.equal(again.Address, "198.18.40.1/24");
    } finally {
      clientA[Symbol.dispose]();
      clientB[Symbol.dispose]();
    }

    // Node b is SIGKILLed while a serves 50 requests at once: a goes on; b started again reads
    // the cluster's log and hands out the next free address.
    using onA = pluginClient(join(dir.path, "a.sock"));
    const during = Promise.all(
      Array.from(
        { length: 50 },
        () => onA.call("IpamDriver.RequestAddress", { PoolID: "198.18.40.0/24", Address: "" }),
      ),
    );
    b.kill("SIGKILL");
    const answers = await during;
    assert.ok(answers.every((reply) => reply.status === 200), "a goes on without b");
    await b.exited();
    await using b2 = spawnBerth(args("b"));
    await b2.ready(join(dir.path, "b.sock"));
    using clientB2 = pluginClient(join(dir.path, "b.sock"));
    const next = await clientB2.call("IpamDriver.RequestAddress", {
      PoolID: "198.18.40.0/24",
      Address: "",
    });
    // .1 was handed out again above, then a's 50: .2 to .51.
    assert.equal((next.body as { Address: string }).Address, "198.18.40.52/24", next.text);
    a.kill("SIGTERM");
    assert.equal((await a.exited()).code, 0, a.stderr());
    assert.match(a.stderr(), /NetworkDriver not served: .* need --advertise-address/);
  },
});
