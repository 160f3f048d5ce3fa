// Two engines over one shared log (the semantics of the etcd log, in memory): a command decided
// on a state another node already changed is refused by the log, stepped back and decided again
// once that node's record is applied here. IPAM across nodes: no address handed out twice.
import assert from "node:assert/strict";
import { parseCidr } from "../../src/backends/ipam.ts";
import { createEngine, type Engine } from "../../src/engine/engine.ts";
import { createIpamService } from "../../src/engine/ipam_service.ts";
import { createSharedMemoryLog } from "../../src/log/shared_memory_store.ts";
import { NO_EFFECTS } from "../../src/engine/effects.ts";

function node(log: ReturnType<typeof createSharedMemoryLog>, name: string) {
  const engine = createEngine({ store: log.node(name), effects: { pool: NO_EFFECTS } });
  return { engine, ipam: createIpamService(engine, parseCidr("198.18.0.0/15"), 24) };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 10));

Deno.test("an address is never handed out twice across nodes", async () => {
  const log = createSharedMemoryLog();
  const a = node(log, "a");
  const b = node(log, "b");
  const { poolId } = await a.ipam.requestPool({
    space: "x",
    pool: "198.18.40.0/24",
    subPool: "",
    options: {},
    v6: false,
  });
  await settle();
  // 200 requests at once, split across the nodes: every one gets an address, none twice.
  const given = await Promise.all(
    Array.from(
      { length: 200 },
      (_, i) => (i % 2 ? a : b).ipam.requestAddress(poolId, "", "endpoint"),
    ),
  );
  assert.equal(new Set(given).size, 200, "no duplicate");
  await settle();
  for (const engine of [a.engine, b.engine] as Engine[]) {
    const pool = engine.list("pool")[0]![1];
    assert.equal(pool.context.addresses.size, 200, "each node sees every address");
  }
  // Released on either node, free on both.
  await Promise.all(given.map((cidr, i) => (i % 2 ? b : a).ipam.releaseAddress(poolId, cidr)));
  await settle();
  for (const engine of [a.engine, b.engine]) {
    assert.equal(engine.list("pool")[0]![1].context.addresses.size, 0);
  }
  const again = await b.ipam.requestAddress(poolId, "", "endpoint");
  assert.equal(again, "198.18.40.1/24", "an address released on one node is reused on another");
});

Deno.test("pools chosen at once on two nodes never overlap", async () => {
  const log = createSharedMemoryLog();
  const a = node(log, "a");
  const b = node(log, "b");
  const request = { space: "x", pool: "", subPool: "", options: {}, v6: false };
  const pools = await Promise.all(
    Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).ipam.requestPool(request)),
  );
  assert.equal(new Set(pools.map((p) => p.pool)).size, 20, JSON.stringify(pools));
});

Deno.test("a record of another node that does not fit is said and counted, never applied", async () => {
  const log = createSharedMemoryLog();
  const said: string[] = [];
  const engine = createEngine({
    store: log.node("b"),
    effects: { pool: NO_EFFECTS },
    warn: (line) => said.push(line),
  });
  const writer = log.node("a");
  await writer.appendAt({
    at: 1,
    actor: "pool/198.18.60.0/24",
    type: "pool.request",
    v: 1,
    data: {},
  }, 0);
  await writer.appendAt({ at: 2, actor: "nothing/x", type: "x", v: 1, data: {} }, 0);
  await settle();
  assert.equal(said.length, 2, said.join("\n"));
  assert.match(said[0]!, /^Ignored record 1 of another node: .*does not fit its schema/);
  assert.match(said[1]!, /^Ignored record 2 of another node: /);
  // The bad record still counts: this node's next append on the pool names version 1.
  const ipam = createIpamService(engine, parseCidr("198.18.0.0/15"), 24);
  const pool = await ipam.requestPool({
    space: "x",
    pool: "198.18.60.0/24",
    subPool: "",
    options: {},
    v6: false,
  });
  assert.equal(pool.pool, "198.18.60.0/24");
  assert.equal(log.all.at(-1)?.type, "pool.request");
});

Deno.test("a pool released on one node is requested again on the other", async () => {
  const log = createSharedMemoryLog();
  const a = node(log, "a");
  const b = node(log, "b");
  const request = { space: "x", pool: "198.18.61.0/24", subPool: "", options: {}, v6: false };
  for (let round = 0; round < 3; round++) {
    // Each node has seen the pool made and released (and forgotten its actor) before it asks.
    await (round % 2 ? b : a).ipam.requestPool(request);
    await settle();
    await (round % 2 ? a : b).ipam.releasePool("198.18.61.0/24");
    await settle();
  }
  await b.ipam.requestPool(request);
  assert.equal(log.all.filter((record) => record.type === "pool.request").length, 4);
});
