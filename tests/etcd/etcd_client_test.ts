// createEtcdClient against a real three-member etcd: conditional appends under a race, conflicts
// carrying the current head, paged reads for replay.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { createEtcdClient, type LogChange, type WatchStatus } from "../../src/log/etcd_client.ts";
import { AppendConflictError } from "../../src/log/etcd_errors.ts";
import { skipUnless } from "../helpers/skip.ts";
import { etcdMissing, startEtcdCluster } from "./_etcd_cluster.ts";

const ignore = skipUnless("etcd client", etcdMissing());

async function collect<T>(events: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
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
      let head = 0;
      for (let round = 0; round < 50; round++) {
        const results = await Promise.allSettled([
          a.appendIfHead("volume/shared", head, [`a${round}`]),
          b.appendIfHead("volume/shared", head, [`b${round}`]),
        ]);
        const won = results.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
        const lost = results.flatMap((r) => r.status === "rejected" ? [r.reason] : []);
        assert.equal(won.length, 1, `round ${round}: ${results.map((r) => r.status)}`);
        assert.ok(won[0]!.revision > head);
        const conflict = lost[0];
        assert.ok(conflict instanceof AppendConflictError, String(conflict));
        assert.equal(conflict.expected, head);
        assert.equal(conflict.current, won[0]!.revision);
        head = won[0]!.revision;
        winners.push(results[0].status === "fulfilled" ? `a${round}` : `b${round}`);
      }
      const stored = await collect(a.readActor("volume/shared"));
      assert.deepEqual(stored.map((e) => e.value), winners);
      assert.equal(stored.at(-1)!.revision, head);
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
      let head = 0;
      for (let version = 0; version < 1200; version += 100) {
        const batch = Array.from({ length: 100 }, (_, i) => `e${version + i + 1}`);
        head = (await client.appendIfHead("volume/big", head, batch)).revision;
      }
      const other = await client.appendIfHead("volume/big-2", 0, ["other"]);
      const revision = await client.currentRevision();
      await client.appendIfHead("volume/big-2", other.revision, ["after the snapshot"]);

      await t.step(
        "readActor returns every event of one actor in order, none of another",
        async () => {
          const events = await collect(client.readActor("volume/big"));
          assert.equal(events.length, 1200);
          assert.deepEqual(events.map((e) => e.value), events.map((_, i) => `e${i + 1}`));
          assert.ok(events.every((e) => e.actor === "volume/big"));
          const revisions = events.map((e) => e.revision);
          assert.deepEqual(revisions, revisions.toSorted((x, y) => x - y));
        },
      );
      await t.step("readAll at a revision leaves out what came after it", async () => {
        const events = await collect(client.readAll(revision));
        assert.equal(events.length, 1201);
        // Key order, not revision order: "volume%2Fbig-2/" sorts before "volume%2Fbig/".
        assert.deepEqual(events.filter((e) => e.actor === "volume/big-2"), [{
          actor: "volume/big-2",
          revision: other.revision,
          value: "other",
        }]);
      });
      await t.step("appendIfHead refuses a stale head and names the current one", async () => {
        await assert.rejects(
          client.appendIfHead("volume/big", head - 1, ["late"]),
          new RegExp(
            `Cannot append to "volume/big": expected its head at ${head - 1}, found ${head}`,
          ),
        );
        await assert.rejects(client.appendIfHead("volume/new", 3, ["x"]), /found 0$/);
      });
    } finally {
      client.close();
    }
  },
});

Deno.test({
  name: "compactActor keeps a snapshot in place of an actor's events, or drops a finished one",
  ignore,
  async fn(t) {
    await using cluster = await startEtcdCluster();
    const client = createEtcdClient({ endpoints: cluster.endpoints, cluster: "squash" });
    const changes: LogChange[] = [];
    const keys = async () => {
      const out = await cluster.etcdctl(["get", "--prefix", "--keys-only", "/berth/"]);
      return out.split("\n").filter((line) => line !== "");
    };
    try {
      await using _watch = await client.watchFrom(
        await client.currentRevision(),
        (change) => changes.push(change),
      );
      let head = 0;
      for (let i = 1; i <= 5; i++) {
        head = (await client.appendIfHead("pool/p", head, [`p${i}`])).revision;
      }
      const other = await client.appendIfHead("pool/q", 0, ["q1"]);

      await t.step("a stale head compacts nothing", async () => {
        assert.equal(await client.compactActor("pool/p", head - 1, "snap"), false);
        assert.equal((await collect(client.readActor("pool/p"))).length, 5);
      });
      await t.step(
        "at the head, the snapshot replaces every event of that actor only",
        async () => {
          assert.equal(await client.compactActor("pool/p", head, "snap at 5"), true);
          assert.deepEqual(await collect(client.readActor("pool/p")), []);
          const snapshots = await collect(client.readSnapshots(await client.currentRevision()));
          assert.deepEqual(snapshots.map((s) => [s.actor, s.value]), [["pool/p", "snap at 5"]]);
          assert.equal((await collect(client.readActor("pool/q"))).length, 1);
          // A second node doing the same work finds it done.
          assert.equal(await client.compactActor("pool/p", head, "snap at 5"), false);
        },
      );
      await t.step("appends go on after the snapshot, on the same head", async () => {
        head = (await client.appendIfHead("pool/p", head, ["p6"])).revision;
        assert.deepEqual((await collect(client.readActor("pool/p"))).map((e) => e.value), ["p6"]);
      });
      await t.step("a drop deletes the actor whole and the watch says so, in order", async () => {
        assert.equal(await client.compactActor("pool/p", head, null), true);
        const left = await keys();
        assert.deepEqual(left.filter((key) => key.includes("pool%2Fp")), []);
        assert.ok(left.some((key) => key.includes("pool%2Fq")), left.join(" "));
        // The actor starts again from nothing: its head is 0.
        const again = await client.appendIfHead("pool/p", 0, ["p-again"]);
        const deadline = Date.now() + 5_000;
        while (changes.length < 17 && Date.now() < deadline) await sleep(20);
        const seen = changes.flatMap((c) =>
          c.type === "event" ? [c.event.value] : c.type === "dropped" ? [`dropped ${c.actor}`] : []
        );
        assert.deepEqual(seen, [
          "p1",
          "p2",
          "p3",
          "p4",
          "p5",
          "q1",
          "p6",
          "dropped pool/p",
          "p-again",
        ]);
        // Each event's head follows it, in the same revision: a head that moved says the record
        // was appended as Berth appends.
        changes.forEach((change, i) => {
          if (change.type !== "event") return;
          const next = changes[i + 1];
          assert.deepEqual(next, {
            type: "head",
            actor: change.event.actor,
            revision: change.event.revision,
          });
        });
        const drop = changes.find((c) => c.type === "dropped")!;
        assert.ok(
          drop.type === "dropped" && drop.revision > head && drop.revision < again.revision,
        );
        assert.ok(other.revision < head);
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
      const first = await client.appendIfHead("volume/c", 0, ["1"]);
      await client.appendIfHead("volume/c", first.revision, ["2"]);
      const revision = await client.currentRevision();
      await cluster.etcdctl(["compaction", String(revision)]);
      // etcd accepts the watch, then cancels it: the watch reports "failed", delivers nothing.
      const statuses: WatchStatus[] = [];
      const delivered: LogChange[] = [];
      await using _watch = await client.watchFrom(
        1,
        (c) => delivered.push(c),
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
