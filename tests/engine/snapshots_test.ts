// Snapshots of the engine's actors: every kind goes to a file and comes back the same, goes on
// the same afterwards, and a start picks the newest good snapshot the log joins on to.
import assert from "node:assert/strict";
import type { AnyMachineSnapshot } from "xstate";
import { lowestFree, type PoolContext } from "../../machines/pool_machine.ts";
import { applyRecord, replay, splitActorId } from "../../src/engine/replay.ts";
import {
  HistoryCompactedError,
  loadReplayBase,
  restoreSnapshot,
  saveSnapshot,
} from "../../src/engine/snapshots.ts";
import { readSnapshot, snapshotName, writeSnapshot } from "../../src/log/snapshot_file.ts";
import type { LogRecord } from "../../src/log/store.ts";
import { tempDir } from "../helpers/temp_dir.ts";

/** A log touching every kind: volumes held by awkward mount IDs, a /16 pool, a network, an endpoint. */
function records(): LogRecord[] {
  const out: LogRecord[] = [];
  const add = (actor: string, type: string, data: Record<string, unknown> = {}) =>
    out.push({ seq: out.length + 1, at: 1_700_000_000_000 + out.length, actor, type, v: 1, data });
  add("volume/a", "volume.create", { opts: { size: "1G" } });
  add("volume/a", "effect.succeeded", { mountpoint: "/v/a" });
  for (const id of ["__proto__", "toString", "m1", "m1"]) {
    add("volume/a", "volume.mount", { mountId: id });
    add("volume/a", "effect.succeeded", { mountpoint: "/v/a" });
  }
  add("volume/b", "volume.create", { opts: {} }); // left in flight: creating
  add("pool/198.18.0.0/16", "pool.request", {
    cidr: "198.18.0.0/16",
    space: "BerthLocal",
    options: {},
  });
  add("pool/198.18.0.0/16", "pool.address.reserve", { address: "198.18.0.1", role: "gateway" });
  for (let i = 2; i < 1500; i++) {
    const address = `198.18.${i >> 8}.${i & 255}`;
    add("pool/198.18.0.0/16", "pool.address.reserve", { address, role: "endpoint" });
  }
  add("pool/198.18.0.0/16", "pool.address.release", { address: "198.18.1.7" });
  const network = "n".repeat(64);
  add(`network/${network}`, "network.create", {
    bridge: "bth-n",
    mtu: null,
    gateway: "198.18.0.1/16",
    pool: "198.18.0.0/16",
    options: { "com.docker.network.bridge.name": "x" },
  });
  add(`network/${network}`, "effect.succeeded");
  add(`endpoint/${"e".repeat(64)}`, "endpoint.create", {
    networkId: network,
    address: "198.18.0.2/16",
    mac: "02:42:c6:12:00:02",
    host: "bthh",
    peer: "bthp",
    bridge: "bth-n",
    mtu: null,
  });
  return out;
}

/** What a snapshot must keep of an actor: its state and its context as plain JSON. */
function plain(actors: ReadonlyMap<string, AnyMachineSnapshot>) {
  return [...actors].map(([id, snapshot]) => ({
    id,
    state: snapshot.value,
    context: splitActorId(id).kind.persist(snapshot.context),
  })).sort((a, b) => (a.id < b.id ? -1 : 1));
}

Deno.test("every kind is written to a snapshot and restored to what replay gives", async () => {
  await using dir = await tempDir();
  const log = records();
  const replayed = replay(log);
  assert.equal(replayed.size, 5);
  const { path } = await saveSnapshot(dir.path, log.length, [...replayed], 1);
  const { header, entries } = await readSnapshot(path);
  const restored = await restoreSnapshot(header, entries);
  assert.deepEqual(plain(restored), plain(replayed));
  const volume = restored.get("volume/a")!.context as { held: number; mounts: Map<string, number> };
  assert.equal(volume.held, 4, "the total is recounted from the pairs");
  assert.equal(volume.mounts.get("__proto__"), 1);
  assert.equal(volume.mounts.get("toString"), 1);
  // The pool's bitmap is rebuilt: the lowest free address is the one released.
  const pool = restored.get("pool/198.18.0.0/16")!.context as PoolContext;
  assert.equal(pool.taken.taken, 1498);
  assert.equal(lowestFree(pool, 0xc6120001, 0xc612fffe), 0xc6120107); // 198.18.1.7
});

Deno.test("a sealed snapshot whose contexts are forged is refused, kind by kind", async () => {
  await using dir = await tempDir();
  const log = records();
  const { path } = await saveSnapshot(dir.path, log.length, [...replay(log)], 1);
  const { header, entries } = await readSnapshot(path);
  const forge = (id: string, change: (context: Record<string, unknown>) => void) =>
    entries.map((entry) => {
      if (entry.id !== id) return entry;
      const context = structuredClone(entry.context) as Record<string, unknown>;
      change(context);
      return { ...entry, context };
    });
  const network = `network/${"n".repeat(64)}`;
  const endpoint = `endpoint/${"e".repeat(64)}`;
  const forgeries = [
    forge("volume/a", (c) => c.name = "../etc"),
    forge("volume/a", (c) => c.name = "b"),
    forge("volume/a", (c) => c.mounts = { m1: 1 }),
    forge("volume/a", (c) => c.mounts = [["m1", -3]]),
    forge("volume/a", (c) => c.extra = true),
    forge("pool/198.18.0.0/16", (c) => c.addresses = [["not an address", "endpoint"]]),
    forge("pool/198.18.0.0/16", (c) => c.options = { a: 1 }),
    forge(network, (c) => c.mtu = "1500"),
    forge(endpoint, (c) => c.plumbed = "yes"),
    forge(endpoint, (c) => delete c.sandboxKey),
  ];
  for (const [index, forged] of forgeries.entries()) {
    await assert.rejects(restoreSnapshot(header, forged), `forgery ${index} was believed`);
  }
  assert.equal((await restoreSnapshot(header, entries)).size, 5, "the true file restores");
});

Deno.test("a restored actor goes on exactly as the replayed one", async () => {
  await using dir = await tempDir();
  const log = records();
  const replayed = replay(log);
  const { path } = await saveSnapshot(dir.path, log.length, [...replayed], 1);
  const { header, entries } = await readSnapshot(path);
  const restored = await restoreSnapshot(header, entries);
  let seq = log.length;
  const more = (actor: string, type: string, data: Record<string, unknown> = {}) => {
    const record = { seq: ++seq, at: 1_800_000_000_000, actor, type, v: 1, data };
    assert.notEqual(applyRecord(replayed, record, () => {}), null);
    assert.notEqual(applyRecord(restored, record, () => {}), null, `${type} on ${actor}`);
  };
  // Held by others still: no effect, no outcome record.
  more("volume/a", "volume.unmount", { mountId: "m1" });
  more("volume/a", "volume.unmount", { mountId: "__proto__" });
  more("volume/b", "effect.succeeded", { mountpoint: "/v/b" });
  more("pool/198.18.0.0/16", "pool.address.reserve", { address: "198.18.1.7", role: "aux" });
  assert.deepEqual(plain(restored), plain(replayed));
});

Deno.test("loadReplayBase passes over a damaged newest snapshot for the one before it", async () => {
  await using dir = await tempDir();
  const log = records();
  const early = new Map<string, AnyMachineSnapshot>();
  for (const record of log.slice(0, 10)) applyRecord(early, record, () => {});
  await saveSnapshot(dir.path, 10, [...early], 1);
  const { path } = await saveSnapshot(dir.path, log.length, [...replay(log)], 2);
  const bytes = await Deno.readFile(path);
  bytes[bytes.length - 30]! ^= 0x04;
  await Deno.writeFile(path, bytes);
  const warnings: string[] = [];
  const base = await loadReplayBase(
    dir.path,
    { firstSeq: 1, lastSeq: log.length },
    (line) => warnings.push(line),
  );
  assert.equal(base.seq, 10);
  assert.deepEqual(plain(base.actors), plain(early));
  assert.equal(warnings.length, 1);
  assert.ok(warnings[0]!.startsWith(`Snapshot ${path} is damaged at byte `), String(warnings[0]));
  assert.match(warnings[0]!, /: checksum mismatch; trying an older one$/);
});

Deno.test("loadReplayBase falls back to the whole log, or refuses when the log was compacted", async () => {
  await using dir = await tempDir();
  const log = records();
  const { path } = await saveSnapshot(dir.path, log.length, [...replay(log)], 1);
  await Deno.writeFile(path, (await Deno.readFile(path)).slice(0, 100));
  const warnings: string[] = [];
  const whole = await loadReplayBase(
    dir.path,
    { firstSeq: 1, lastSeq: log.length },
    (line) => warnings.push(line),
  );
  assert.equal(whole.seq, 0);
  assert.equal(whole.actors.size, 0);
  assert.match(warnings.at(-1)!, /Replaying the whole log instead/);
  await assert.rejects(
    () => loadReplayBase(dir.path, { firstSeq: 5, lastSeq: log.length }, () => {}),
    (error: unknown) =>
      error instanceof HistoryCompactedError &&
      /the log starts at sequence 5 \(older segments were compacted\)/.test(error.message),
  );
});

Deno.test("loadReplayBase leaves out a snapshot past the end of the log or of another machine version", async () => {
  await using dir = await tempDir();
  const log = records();
  const actors = [...replay(log)];
  await saveSnapshot(dir.path, 5, [], 1);
  await saveSnapshot(dir.path, log.length + 10, actors, 1);
  const entries = actors.map(([id, snapshot]) => ({
    id,
    state: snapshot.value,
    context: splitActorId(id).kind.persist(snapshot.context),
  }));
  await writeSnapshot(
    dir.path,
    { seq: log.length, base: 0, at: 1, versions: { volume: 99, pool: 1, network: 1, endpoint: 1 } },
    entries.length,
    entries,
  );
  const warnings: string[] = [];
  const base = await loadReplayBase(
    dir.path,
    { firstSeq: 1, lastSeq: log.length },
    (line) => warnings.push(line),
  );
  assert.equal(base.seq, 5);
  assert.match(warnings[0]!, new RegExp(`${snapshotName(log.length + 10)} is past the end`));
  assert.match(warnings[1]!, /version 99 of the volume machine; this Berth runs 1/);
});

Deno.test("a delta whose base is damaged or gone is passed over like a damaged snapshot", async () => {
  await using dir = await tempDir();
  const log = records();
  const early = new Map<string, AnyMachineSnapshot>();
  for (const record of log.slice(0, 10)) applyRecord(early, record, () => {});
  const full = await saveSnapshot(dir.path, 10, [...early], 1);
  const all = replay(log);
  const changed = [...all].filter(([id]) => id !== "volume/a"); // a changed before 10 only
  await saveSnapshot(dir.path, log.length, changed, 2, { base: 10, removed: [] });
  const extent = { firstSeq: 1, lastSeq: log.length };
  // Whole: the delta laid over the full one is what the log replays to.
  const whole = await loadReplayBase(dir.path, extent, () => assert.fail("no warning"));
  assert.equal(whole.seq, log.length);
  assert.equal(whole.fullSeq, 10);
  assert.deepEqual(plain(whole.actors), plain(all));
  // The full one damaged: neither can be used; the whole log is replayed instead.
  const bytes = await Deno.readFile(full.path);
  bytes[50]! ^= 0x01;
  await Deno.writeFile(full.path, bytes);
  const warnings: string[] = [];
  const base = await loadReplayBase(dir.path, extent, (line) => warnings.push(line));
  assert.equal(base.seq, 0);
  assert.match(warnings[0]!, /\.delta cannot be used: it builds on Snapshot .*\.snap is damaged/);
  assert.match(warnings[1]!, /\.snap is damaged at byte \d+/);
  assert.match(warnings[2]!, /Replaying the whole log instead/);
  // The full one gone: the delta says what it misses.
  await Deno.remove(full.path);
  const missing: string[] = [];
  await loadReplayBase(dir.path, extent, (line) => missing.push(line));
  assert.match(missing[0]!, /builds on the snapshot at sequence 10, which is not there/);
});
