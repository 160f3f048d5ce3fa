// Compaction of a shared log (the etcd log's semantics, in memory): an actor's records are put
// into its snapshot every so many, a finished actor is dropped whole, and nodes running or
// started later keep the same state: no address lost, none handed out twice, and a dropped
// actor made again on any node.
import assert from "node:assert/strict";
import { parseCidr } from "../../src/backends/ipam.ts";
import { NO_EFFECTS } from "../../src/engine/effects.ts";
import { createEngine } from "../../src/engine/engine.ts";
import { createIpamService } from "../../src/engine/ipam_service.ts";
import { replayInSlices } from "../../src/engine/replay.ts";
import { startSharedCompaction } from "../../src/engine/shared_compaction.ts";
import { restoreActorSnapshots } from "../../src/engine/snapshots.ts";
import { createSharedMemoryLog, type SharedMemoryLog } from "../../src/log/shared_memory_store.ts";

const POOL = "198.18.70.0/24";
const request = { space: "x", pool: POOL, subPool: "", options: {}, v6: false };

/** A node started as `serve` starts one: snapshots, the records after them, then compaction. */
async function node(log: SharedMemoryLog, name: string, everyEvents = 8) {
  const store = log.node(name);
  const warned: string[] = [];
  const warn = (line: string) => warned.push(line);
  const actors = await replayInSlices(
    store.records(),
    warn,
    await restoreActorSnapshots(store.openSnapshots()),
  );
  const engine = createEngine({ store, effects: { pool: NO_EFFECTS }, actors, warn });
  const compaction = startSharedCompaction({
    engine,
    store,
    everyEvents,
    live: new Set(actors.keys()),
    warn,
  });
  const ipam = createIpamService(engine, parseCidr("198.18.0.0/15"), 24);
  const addresses = () => [...(engine.list("pool")[0]?.[1].context.addresses.keys() ?? [])].sort();
  return { engine, ipam, compaction, warned, addresses };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 10));
const poolRecords = (log: SharedMemoryLog) =>
  log.all.filter((record) => record.actor === `pool/${POOL}`).length;

Deno.test("a pool's records go into its snapshot; a node started later has every address", async () => {
  const log = createSharedMemoryLog();
  const a = await node(log, "a");
  const b = await node(log, "b");
  const { poolId } = await a.ipam.requestPool(request);
  const given = await Promise.all(
    Array.from(
      { length: 60 },
      (_, i) => (i % 2 ? a : b).ipam.requestAddress(poolId, "", "endpoint"),
    ),
  );
  await settle();
  assert.equal(new Set(given).size, 60);
  // 61 records in all, kept to fewer than two rounds of 8 (a node compacts on its own records).
  assert.ok(poolRecords(log) < 16, `${poolRecords(log)} records of the pool left`);
  assert.ok(log.snapshots.has(`pool/${POOL}`));
  assert.ok(a.compaction.done.snapshots + b.compaction.done.snapshots >= 3);

  const c = await node(log, "c");
  assert.deepEqual(c.addresses(), a.addresses());
  assert.deepEqual(b.addresses(), a.addresses());
  assert.equal(a.addresses().length, 60);
  // The newcomer hands out only free addresses, racing the others.
  const more = await Promise.all(
    Array.from(
      { length: 30 },
      (_, i) => [a, b, c][i % 3]!.ipam.requestAddress(poolId, "", "endpoint"),
    ),
  );
  assert.equal(new Set([...given, ...more]).size, 90);
  for (const n of [a, b, c]) assert.deepEqual(n.warned, []);
});

Deno.test("a released pool leaves nothing in the log and is requested again on either node", async () => {
  const log = createSharedMemoryLog();
  const a = await node(log, "a");
  const b = await node(log, "b");
  for (let round = 0; round < 4; round++) {
    const [maker, releaser] = round % 2 ? [b, a] : [a, b];
    const { poolId } = await maker.ipam.requestPool(request);
    const address = await maker.ipam.requestAddress(poolId, "", "endpoint");
    await settle();
    await releaser.ipam.releaseAddress(poolId, address);
    await releaser.ipam.releasePool(poolId);
    await settle();
    assert.equal(poolRecords(log), 0, `round ${round}: the pool's records are gone`);
    assert.equal(log.snapshots.size, 0);
  }
  assert.equal(a.compaction.done.drops + b.compaction.done.drops, 4);
  // Made again after its drop, by a node whose last sight of it was before the drop.
  await a.ipam.requestPool(request);
  await b.ipam.requestAddress(`${POOL}`, "", "endpoint").catch(() => {});
  const c = await node(log, "c");
  assert.equal(c.engine.list("pool").length, 1);
  for (const n of [a, b, c]) assert.deepEqual(n.warned, []);
});

Deno.test("a pool requested on one node while the other drops it: every node agrees", async () => {
  const outcomes = new Set<string>();
  for (let round = 0; round < 20; round++) {
    const log = createSharedMemoryLog();
    const a = await node(log, "a");
    const b = await node(log, "b");
    await a.ipam.requestPool(request);
    await settle();
    // a releases it (and drops it right after), while b asks for it again, now or a bit later.
    const released = a.ipam.releasePool(POOL);
    if (round % 2) await released;
    const requested = await b.ipam.requestPool(request).then(() => "ok", String);
    await released;
    await settle();
    const c = await node(log, "c");
    const live = (n: typeof a) => n.engine.list("pool").map(([id]) => id).join();
    // Whichever came last in the log wins, on every node and in the log itself.
    assert.equal(live(b), live(a), `round ${round}`);
    assert.equal(live(c), live(a), `round ${round}`);
    outcomes.add(`${requested}: ${live(a) || "none"}`);
    // And the pool can be had again afterwards from any node.
    await b.ipam.requestPool(request);
    await settle();
    for (const n of [a, b, c]) assert.equal(live(n), `pool/${POOL}`, `round ${round}`);
    for (const n of [a, b, c]) assert.deepEqual(n.warned, []);
  }
  Deno.stderr.writeSync(new TextEncoder().encode(`outcomes: ${[...outcomes].join("; ")}\n`));
});

Deno.test("a start drops the finished actors a node killed before dropping them left", async () => {
  const log = createSharedMemoryLog();
  // No compaction on this node (as one killed right after its records).
  const store = log.node("a");
  const engine = createEngine({ store, effects: { pool: NO_EFFECTS } });
  const ipam = createIpamService(engine, parseCidr("198.18.0.0/15"), 24);
  await ipam.requestPool(request);
  await ipam.requestPool({ ...request, pool: "198.18.71.0/24" });
  await ipam.releasePool(POOL);
  assert.equal(poolRecords(log), 2);
  const b = await node(log, "b");
  await settle();
  assert.equal(poolRecords(log), 0);
  assert.deepEqual(log.all.map((record) => record.actor), ["pool/198.18.71.0/24"]);
  assert.equal(b.compaction.done.drops, 1);
  await b.ipam.requestPool(request);
});

Deno.test("a compaction the store refuses is said once and tried again after more records", async () => {
  const log = createSharedMemoryLog();
  const store = log.node("a");
  let refusals = 2;
  const refusing = Object.assign(Object.create(store), {
    compact: (...args: Parameters<typeof store.compact>) =>
      refusals-- > 0
        ? Promise.reject(new Error("etcdserver: request is too large"))
        : store.compact(...args),
  }) as typeof store;
  const warned: string[] = [];
  const engine = createEngine({ store: refusing, effects: { pool: NO_EFFECTS } });
  const compaction = startSharedCompaction({
    engine,
    store: refusing,
    everyEvents: 4,
    live: new Set(),
    warn: (line) => warned.push(line),
  });
  const ipam = createIpamService(engine, parseCidr("198.18.0.0/15"), 24);
  const { poolId } = await ipam.requestPool(request);
  for (let i = 0; i < 11; i++) await ipam.requestAddress(poolId, "", "endpoint");
  await settle();
  // Refused at the 4th and 8th record (said once), taken at the 12th: one snapshot, no records.
  assert.deepEqual(warned, [
    `Cannot compact pool/${POOL} in the shared log: etcdserver: request is too large`,
  ]);
  assert.equal(compaction.done.snapshots, 1);
  assert.equal(poolRecords(log), 0);
  await compaction.stop();
});
