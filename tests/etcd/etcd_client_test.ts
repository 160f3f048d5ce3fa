// createEtcdClient against a real three-member etcd: conditional appends under a race, conflicts
// carrying the current head, paged reads for replay.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { createEtcdClient, type StoredEvent, type WatchStatus } from "../../src/log/etcd_client.ts";
import { AppendConflictError } from "../../src/log/etcd_errors.ts";
import { skipUnless } from "../helpers/skip.ts";
import { etcdMissing, startEtcdCluster } from "./_etcd_cluster.ts";

const ignore = skipUnless("etcd client", etcdMissing());

async function collect(events: AsyncIterable<StoredEvent>): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  for await (const event of events) all.push(event);
  return all;
}

Deno.test({
  name: "appendIfHead lets exactly one of two racing clients win each of 50 rounds",
  ignore,
  async fn() {
    await using cluster = await startEtcdCluster();
    const a = createEtcdClient({ endpoints: cluster.endpoints, cluster: "race" });
    const b = createEtcdClient({ endpoints: cluster.endpoints.toReversed(), cluster: "race" });
    try {
      const winners: string[] = [];
      for (let round = 0; round < 50; round++) {
        const results = await Promise.allSettled([
          a.appendIfHead("volume/shared", round, [`a${round}`]),
          b.appendIfHead("volume/shared", round, [`b${round}`]),
        ]);
        const won = results.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
        const lost = results.flatMap((r) => r.status === "rejected" ? [r.reason] : []);
        assert.equal(won.length, 1, `round ${round}: ${results.map((r) => r.status)}`);
        assert.equal(won[0]!.version, round + 1);
        const conflict = lost[0];
        assert.ok(conflict instanceof AppendConflictError, String(conflict));
        assert.equal(conflict.current, round + 1);
        assert.equal(conflict.headRevision, won[0]!.revision);
        winners.push(results[0].status === "fulfilled" ? `a${round}` : `b${round}`);
      }
      const stored = await collect(a.readActor("volume/shared"));
      assert.deepEqual(stored.map((e) => e.value), winners);
      assert.deepEqual(stored.map((e) => e.version), winners.map((_, i) => i + 1));
    } finally {
      a.close();
      b.close();
    }
  },
});

Deno.test({
  name: "createEtcdClient reads actors and the whole log page by page, in order",
  ignore,
  async fn(t) {
    await using cluster = await startEtcdCluster();
    const client = createEtcdClient({ endpoints: cluster.endpoints, cluster: "read" });
    try {
      // 1200 events in batches of 100: more than two pages of 500.
      for (let version = 0; version < 1200; version += 100) {
        const batch = Array.from({ length: 100 }, (_, i) => `e${version + i + 1}`);
        await client.appendIfHead("volume/big", version, batch);
      }
      await client.appendIfHead("volume/big-2", 0, ["other"]);
      const revision = await client.currentRevision();
      await client.appendIfHead("volume/big-2", 1, ["after the snapshot"]);

      await t.step("readActor returns every event of one actor, none of another", async () => {
        const events = await collect(client.readActor("volume/big"));
        assert.equal(events.length, 1200);
        assert.deepEqual(events.map((e) => e.version), events.map((_, i) => i + 1));
        assert.ok(events.every((e) => e.value === `e${e.version}` && e.actor === "volume/big"));
      });
      await t.step("readActor starts after a version", async () => {
        const events = await collect(client.readActor("volume/big", 1150));
        assert.deepEqual(events.map((e) => e.version), [...Array(50)].map((_, i) => 1151 + i));
      });
      await t.step("readAll at a revision leaves out what came after it", async () => {
        const events = await collect(client.readAll(revision));
        assert.equal(events.length, 1201);
        // Key order, not revision order: "volume%2Fbig-2/" sorts before "volume%2Fbig/".
        assert.deepEqual(events.filter((e) => e.actor === "volume/big-2"), [{
          actor: "volume/big-2",
          version: 1,
          revision,
          value: "other",
        }]);
      });
      await t.step("appendIfHead refuses a stale head and names the current version", async () => {
        await assert.rejects(
          client.appendIfHead("volume/big", 1199, ["late"]),
          /Cannot append to "volume\/big": expected version 1199, found 1200/,
        );
        await assert.rejects(client.appendIfHead("volume/new", 3, ["x"]), /found 0$/);
      });
    } finally {
      client.close();
    }
  },
});

Deno.test({
  name: "createEtcdClient refuses to read or watch from a compacted revision, saying so",
  ignore,
  async fn() {
    await using cluster = await startEtcdCluster();
    const client = createEtcdClient({ endpoints: cluster.endpoints, cluster: "compact" });
    try {
      await client.appendIfHead("volume/c", 0, ["1"]);
      await client.appendIfHead("volume/c", 1, ["2"]);
      const revision = await client.currentRevision();
      const compaction = await new Deno.Command("etcdctl", {
        args: [`--endpoints=${cluster.endpoints[0]}`, "compaction", String(revision)],
        env: { ETCDCTL_API: "3" },
        stdout: "null",
      }).output();
      assert.ok(compaction.success, new TextDecoder().decode(compaction.stderr));
      // etcd accepts the watch, then cancels it: the watch reports "failed", delivers nothing.
      const statuses: WatchStatus[] = [];
      const delivered: StoredEvent[] = [];
      await using _watch = await client.watchFrom(
        1,
        (e) => delivered.push(e),
        (s) => statuses.push(s),
      );
      for (let i = 0; i < 100 && !statuses.some((s) => s.type === "failed"); i++) await sleep(20);
      const failed = statuses.find((s) => s.type === "failed");
      assert.match(
        failed?.type === "failed" ? failed.reason : JSON.stringify(statuses),
        /compacted/,
      );
      assert.deepEqual(delivered, []);
      await assert.rejects(
        collect(client.readAll(revision - 1)),
        /^Error: Cannot read the log at revision \d+: .*compacted/,
      );
      assert.deepEqual((await collect(client.readActor("volume/c"))).map((e) => e.value), [
        "1",
        "2",
      ]);
    } finally {
      client.close();
    }
  },
});
