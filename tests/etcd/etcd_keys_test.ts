// The etcd key layout: order, prefix isolation between actors, round trips. Pure; no etcd.
import assert from "node:assert/strict";
import { etcdKeys, prefixEnd } from "../../src/log/_etcd_keys.ts";

Deno.test("etcdKeys orders an actor's events as the log does, as etcd orders bytes", () => {
  const keys = etcdKeys("c1");
  const appends: [number, number][] = [[10, 0], [9, 1], [100, 0], [0, 0], [9, 0], [10, 12]];
  const sorted = appends.map(([after, i]) => keys.event("volume/db", after, i)).sort();
  assert.deepEqual(
    sorted,
    [[0, 0], [9, 0], [9, 1], [10, 0], [10, 12], [100, 0]].map(
      ([after, i]) => keys.event("volume/db", after!, i!),
    ),
  );
  assert.equal(
    keys.event("volume/db", 1, 2),
    "/berth/c1/log/events/volume%2Fdb/00000000000000000001.002",
  );
});

Deno.test("etcdKeys keeps one actor's prefix free of another actor's keys", () => {
  const keys = etcdKeys("c1");
  const prefix = keys.actorEvents("volume/db");
  assert.equal(keys.event("volume/db/x", 1, 0).startsWith(prefix), false);
  assert.equal(keys.event("volume/db-data", 1, 0).startsWith(prefix), false);
  assert.equal(keys.head("volume/db").startsWith(keys.events), false);
  assert.equal(keys.head("volume/db").startsWith(keys.log), true);
  // The watch covers log/: snapshots, read only at start, stay out of it.
  assert.equal(keys.snapshot("volume/db").startsWith(keys.log), false);
});

Deno.test("etcdKeys gives back the actor of an event, head or snapshot key", () => {
  const keys = etcdKeys("c1");
  assert.equal(keys.actorOf(keys.event("network/a b%", 42, 0), keys.events), "network/a b%");
  assert.equal(keys.actorOf(keys.head("pool/x/y"), keys.heads), "pool/x/y");
  assert.equal(keys.actorOf(keys.snapshot("pool/x"), keys.snapshots), "pool/x");
  assert.equal(keys.actorOf("/berth/c2/log/events/x/00000000000000000001.000", keys.events), null);
  assert.equal(keys.actorOf(keys.head("pool/x"), keys.events), null);
  assert.equal(keys.actorOf(`${keys.heads}%E0%A4%A`, keys.heads), null);
});

Deno.test("etcdKeys refuses a cluster name, actor or number that would break the layout", () => {
  assert.throws(() => etcdKeys("A/b"), /Cannot use cluster name "A\/b"/);
  assert.throws(() => etcdKeys("c").event("", 1, 0), /empty actor/);
  assert.throws(() => etcdKeys("c").event("v/x", -1, 0), /Cannot use -1 in a key/);
  assert.throws(() => etcdKeys("c").event("v/x", 1, 1000), /Cannot use 1000 in a key/);
});

Deno.test("prefixEnd bounds exactly the keys under a prefix", () => {
  assert.equal(prefixEnd("/berth/c/log/events/"), "/berth/c/log/events0");
  assert.ok("/berth/c/log/events/\uffff" < prefixEnd("/berth/c/log/events/"));
});
