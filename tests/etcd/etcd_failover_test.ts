// The etcd client while members die: the watch survives losing its member, appends go on with a
// quorum of two and every acknowledged one stays readable, and without quorum an append fails
// with "Store unavailable" within the client's bound.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { createEtcdClient, type EtcdClient, type StoredEvent } from "../../src/log/etcd_client.ts";
import type { WatchStatus } from "../../src/log/_etcd_watch.ts";
import { StoreUnavailableError } from "../../src/log/etcd_errors.ts";
import { skipUnless } from "../helpers/skip.ts";
import { etcdMissing, startEtcdCluster } from "./_etcd_cluster.ts";

const ignore = skipUnless("etcd failover", etcdMissing());
const TIMEOUT_MS = 5_000;

/**
 * Appends `value` as the actor's next event after its head at revision `expected`, retrying
 * while etcd is unavailable; resolves to the new head.
 */
async function appendRetrying(
  client: EtcdClient,
  actor: string,
  expected: number,
  value: string,
): Promise<{ failures: number; revision: number }> {
  for (let failures = 0;; failures++) {
    try {
      const { revision } = await client.appendIfHead(actor, expected, [value]);
      return { failures, revision };
    } catch (error) {
      if (!(error instanceof StoreUnavailableError) || failures >= 5) throw error;
    }
  }
}

async function values(client: EtcdClient, actor: string): Promise<string[]> {
  return (await events(client, actor)).map((event) => event.value);
}

async function events(client: EtcdClient, actor: string): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  for await (const event of client.readActor(actor)) all.push(event);
  return all;
}

async function until(what: string, ms: number, done: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

Deno.test({
  name: "watchFrom delivers every event once, in order, across a SIGKILL of its member",
  ignore,
  async fn() {
    await using cluster = await startEtcdCluster();
    const writer = createEtcdClient({
      endpoints: cluster.endpoints,
      cluster: "w",
      timeoutMs: 5_000,
    });
    const reader = createEtcdClient({
      endpoints: cluster.endpoints,
      cluster: "w",
      timeoutMs: 5_000,
    });
    try {
      await writer.appendIfHead("volume/before", 0, ["before-1", "before-2"]);
      const seen: StoredEvent[] = [];
      const statuses: WatchStatus[] = [];
      await using watch = await reader.watchFrom(
        0,
        (c) => c.type === "event" && seen.push(c.event),
        (s) => statuses.push(s),
      );
      const first = statuses[0];
      assert.ok(first?.type === "connected", JSON.stringify(statuses));
      const victim = cluster.memberIds.indexOf(first.memberId);
      const acked: string[] = ["before-1", "before-2"];
      const versions = new Map<string, number>();
      for (let i = 1; i <= 300; i++) {
        if (i === 100) await cluster.kill(victim);
        const actor = `volume/v${i % 3}`;
        const version = versions.get(actor) ?? 0;
        versions.set(actor, (await appendRetrying(writer, actor, version, `v${i}`)).revision);
        acked.push(`v${i}`);
      }
      await until("the watch to catch up", 20_000, () => seen.length >= acked.length);
      await sleep(200); // a duplicate would arrive right behind the last event
      assert.deepEqual(seen.map((e) => e.value), acked);
      const revisions = seen.map((e) => e.revision);
      assert.deepEqual(revisions, revisions.toSorted((x, y) => x - y));
      assert.equal(watch.revision, revisions.at(-1));
      const moved = statuses.find((s, i) =>
        i > 0 && s.type === "connected" && s.memberId !== first.memberId
      );
      assert.ok(moved, `never reconnected elsewhere: ${JSON.stringify(statuses)}`);
      await cluster.restart(victim);
    } finally {
      writer.close();
      reader.close();
    }
  },
});

Deno.test({
  name: "watchFrom loses nothing when its member dies while it catches up on a backlog",
  ignore,
  async fn() {
    await using cluster = await startEtcdCluster();
    const writer = createEtcdClient({ endpoints: cluster.endpoints, cluster: "b" });
    const reader = createEtcdClient({ endpoints: cluster.endpoints, cluster: "b" });
    try {
      const padding = "x".repeat(1_000);
      let head = 0;
      for (let batch = 0; batch < 80; batch++) {
        const values = Array.from({ length: 100 }, (_, i) => `${batch * 100 + i + 1} ${padding}`);
        head = (await writer.appendIfHead("volume/backlog", head, values)).revision;
      }
      const seen: number[] = [];
      let killed: Promise<void> | null = null;
      // etcd3 alone would resume after the store's revision and skip the rest of the backlog.
      const number = (value: string) => Number(value.split(" ")[0]);
      await using _watch = await reader.watchFrom(0, (change) => {
        if (change.type === "event") seen.push(number(change.event.value));
      }, (status) => {
        if (status.type !== "connected" || killed !== null) return;
        killed = cluster.kill(cluster.memberIds.indexOf(status.memberId));
      });
      await killed;
      await until("the backlog", 20_000, () => seen.length >= 8_000);
      await sleep(200);
      assert.equal(seen.length, 8_000);
      assert.ok(seen.every((version, i) => version === i + 1));
    } finally {
      writer.close();
      reader.close();
    }
  },
});

Deno.test({
  name: "appendIfHead goes on through a SIGKILL of the leader; every acknowledged append is read",
  ignore,
  async fn() {
    await using cluster = await startEtcdCluster();
    const client = createEtcdClient({
      endpoints: cluster.endpoints,
      cluster: "k",
      timeoutMs: 5_000,
    });
    try {
      const leader = await cluster.leader();
      let total = 0;
      let afterKill = 0;
      let killed: Promise<void> | null = null;
      const acked = new Map<string, string[]>();
      let failures = 0;
      let slowest = 0;
      await Promise.all([0, 1, 2, 3].map(async (writer) => {
        const actor = `volume/k${writer}`;
        const mine: string[] = [];
        acked.set(actor, mine);
        let head = 0;
        for (let i = 0; i < 50; i++) {
          const started = performance.now();
          const appended = await appendRetrying(client, actor, head, `${actor}#${i}`);
          failures += appended.failures;
          head = appended.revision;
          slowest = Math.max(slowest, performance.now() - started);
          mine.push(`${actor}#${i}`);
          if (killed !== null) afterKill++;
          if (++total === 50) killed = cluster.kill(leader);
        }
      }));
      await killed;
      assert.equal(total, 200);
      assert.ok(afterKill >= 140, `only ${afterKill} appends after the kill`);
      for (const [actor, expected] of acked) {
        assert.deepEqual(await values(client, actor), expected);
      }
      Deno.stderr.writeSync(new TextEncoder().encode(
        `leader SIGKILLed after 50 of 200 appends: ${failures} unavailable (retried), ` +
          `slowest append ${Math.round(slowest)} ms\n`,
      ));
      await cluster.restart(leader);
    } finally {
      client.close();
    }
  },
});

Deno.test({
  name: "appendIfHead fails with Store unavailable within its bound when 2 of 3 members are dead",
  ignore,
  async fn() {
    await using cluster = await startEtcdCluster();
    const client = createEtcdClient({
      endpoints: cluster.endpoints,
      cluster: "q",
      timeoutMs: TIMEOUT_MS,
    });
    try {
      const { revision } = await client.appendIfHead("volume/q", 0, ["acked-1", "acked-2"]);
      await cluster.kill(1);
      await cluster.kill(2);
      const started = performance.now();
      const error = await client.appendIfHead("volume/q", revision, ["unacked"]).catch((e) => e);
      const elapsed = performance.now() - started;
      assert.ok(error instanceof StoreUnavailableError, String(error));
      assert.match(
        error.message,
        /^Store unavailable: cannot append to "volume\/q" within 5000 ms: [^\n]+$/,
      );
      assert.ok(elapsed <= TIMEOUT_MS + 1_000, `failed after ${elapsed} ms`);
      await assert.rejects(client.currentRevision(), StoreUnavailableError);

      await cluster.restart(1);
      await cluster.restart(2);
      // Back to quorum: the acknowledged events are there; the refused one may have committed
      // after all (a proposal already in the survivor's log), which is why it was not acked.
      let read: StoredEvent[] = [];
      for (let attempt = 0; read.length === 0; attempt++) {
        read = await events(client, "volume/q").catch(() => []);
        if (read.length === 0) await sleep(200);
      }
      const stored = read.map((event) => event.value);
      assert.deepEqual(stored.slice(0, 2), ["acked-1", "acked-2"]);
      assert.ok(stored.length === 2 || stored[2] === "unacked", JSON.stringify(stored));
      Deno.stderr.writeSync(new TextEncoder().encode(
        `no quorum: failed after ${Math.round(elapsed)} ms: ${error.message}; ` +
          `the unacknowledged append ${stored.length === 3 ? "committed later" : "is absent"}\n`,
      ));
      await appendRetrying(client, "volume/q", read.at(-1)!.revision, "after recovery");
    } finally {
      client.close();
    }
  },
});

Deno.test({
  name: "appendIfHead and watchFrom go on when a member freezes (SIGSTOP: open but silent)",
  ignore,
  async fn() {
    await using cluster = await startEtcdCluster();
    const writer = createEtcdClient({ endpoints: cluster.endpoints, cluster: "f" });
    const reader = createEtcdClient({ endpoints: cluster.endpoints, cluster: "f" });
    try {
      const seen: string[] = [];
      const statuses: WatchStatus[] = [];
      await using _watch = await reader.watchFrom(
        0,
        (c) => c.type === "event" && seen.push(c.event.value),
        (s) => statuses.push(s),
      );
      const first = statuses[0];
      assert.ok(first?.type === "connected", JSON.stringify(statuses));
      const frozen = cluster.memberIds.indexOf(first.memberId);
      cluster.freeze(frozen);
      const frozenAt = performance.now();
      let slowest = 0;
      let head = 0;
      for (let i = 0; i < 50; i++) {
        const started = performance.now();
        head = (await appendRetrying(writer, "volume/f", head, `f${i}`)).revision;
        slowest = Math.max(slowest, performance.now() - started);
      }
      // Noticing the freeze takes a keepalive (6 + 3 s); etcd3 then reconnects to a member picked
      // at random, the frozen one too, and each such pick costs the watchdog's 5 s: allow several.
      await until("the watch to move off the frozen member", 60_000, () => seen.length === 50);
      const caughtUp = performance.now() - frozenAt;
      assert.deepEqual(seen, [...Array(50)].map((_, i) => `f${i}`));
      Deno.stderr.writeSync(new TextEncoder().encode(
        `member frozen: slowest append ${Math.round(slowest)} ms, ` +
          `watch caught up ${Math.round(caughtUp)} ms after the freeze\n`,
      ));
      cluster.thaw(frozen);
    } finally {
      writer.close();
      reader.close();
    }
  },
});
