// The etcd key layout: order, prefix isolation between actors, round trips. Pure; no etcd.
import assert from "node:assert/strict";
import { etcdKeys, prefixEnd } from "../../src/log/_etcd_keys.ts";

Deno.test("etcdKeys orders versions numerically as etcd orders bytes", () => {
  const keys = etcdKeys("c1");
  const sorted = [10, 9, 100, 1, 2].map((v) => keys.event("volume/db", v)).sort();
  assert.deepEqual(sorted.map((k) => keys.parseEvent(k)?.version), [1, 2, 9, 10, 100]);
  assert.equal(keys.event("volume/db", 1), "/berth/c1/events/volume%2Fdb/00000000000000000001");
});

Deno.test("etcdKeys keeps one actor's prefix free of another actor's events", () => {
  const keys = etcdKeys("c1");
  const prefix = keys.actorEvents("volume/db");
  assert.equal(keys.event("volume/db/x", 1).startsWith(prefix), false);
  assert.equal(keys.event("volume/db-data", 1).startsWith(prefix), false);
  assert.equal(keys.head("volume/db").startsWith(keys.events), false);
});

Deno.test("etcdKeys parses back the actor and version of an event key", () => {
  const keys = etcdKeys("c1");
  assert.deepEqual(keys.parseEvent(keys.event("network/a b%", 42)), {
    actor: "network/a b%",
    version: 42,
  });
  assert.equal(keys.parseEvent("/berth/c2/events/x/00000000000000000001"), null);
});

Deno.test("etcdKeys refuses a cluster name, actor or version that would break the layout", () => {
  assert.throws(() => etcdKeys("A/b"), /Cannot use cluster name "A\/b"/);
  assert.throws(() => etcdKeys("c").event("", 1), /empty actor/);
  assert.throws(() => etcdKeys("c").event("v/x", 0), /Cannot use version 0/);
});

Deno.test("prefixEnd bounds exactly the keys under a prefix", () => {
  assert.equal(prefixEnd("/berth/c/events/"), "/berth/c/events0");
  assert.ok("/berth/c/events/\uffff" < prefixEnd("/berth/c/events/"));
});
