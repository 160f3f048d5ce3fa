import assert from "node:assert/strict";
import {
  ipNumber,
  lowestFree,
  poolMachine,
  poolRefusal,
  type PoolSnapshot,
} from "../../machines/pool_machine.ts";
import { given } from "../helpers/given.ts";

const input = { name: "198.18.7.0/24" };
const request = (at = 1) => ({
  type: "pool.request" as const,
  cidr: "198.18.7.0/24",
  space: "BerthLocal",
  options: {},
  at,
});
const reserve = (address: string, role: "gateway" | "endpoint" | "aux" = "endpoint", at = 2) => ({
  type: "pool.address.reserve" as const,
  address,
  role,
  at,
});
const release = (address: string, at = 3) => ({
  type: "pool.address.release" as const,
  address,
  at,
});
const releasePool = (at = 4) => ({ type: "pool.release" as const, at });

const ACTIVE = [request(), reserve("198.18.7.1", "gateway")];

Deno.test("poolMachine in absent", async (t) => {
  await t.step("accepts pool.request: active, nothing handed out", () => {
    given(poolMachine, input, []).when(request(5)).then({
      state: "active",
      context: {
        cidr: "198.18.7.0/24",
        space: "BerthLocal",
        addresses: {},
        gateway: null,
        createdAt: 5,
      },
    });
  });
  for (const event of [reserve("198.18.7.2"), release("198.18.7.2"), releasePool()]) {
    await t.step(`refuses ${event.type}`, () => {
      given(poolMachine, input, []).when(event).thenRefused();
    });
  }
});

Deno.test("poolMachine in active", async (t) => {
  await t.step("pool.address.reserve of a free address hands it out with its role", () => {
    given(poolMachine, input, ACTIVE).when(reserve("198.18.7.2")).then({
      state: "active",
      context: {
        addresses: { "198.18.7.1": "gateway", "198.18.7.2": "endpoint" },
        gateway: "198.18.7.1",
      },
    });
  });
  await t.step("refuses pool.address.reserve of an address already out, naming its holder", () => {
    const snapshot = given(poolMachine, input, ACTIVE).when(reserve("198.18.7.1")).thenRefused();
    assert.equal(
      poolRefusal(snapshot as PoolSnapshot, reserve("198.18.7.1")),
      'Cannot reserve address "198.18.7.1" in pool "198.18.7.0/24": already in use (gateway)',
    );
  });
  await t.step("pool.address.release frees it for the next request", () => {
    const freed = [...ACTIVE, reserve("198.18.7.2"), release("198.18.7.2")];
    given(poolMachine, input, freed).when(reserve("198.18.7.2")).then({ state: "active" });
  });
  await t.step("refuses pool.address.release of an address not out", () => {
    const snapshot = given(poolMachine, input, ACTIVE).when(release("198.18.7.9")).thenRefused();
    assert.equal(
      poolRefusal(snapshot as PoolSnapshot, release("198.18.7.9")),
      'Cannot release address "198.18.7.9" in pool "198.18.7.0/24": it is not in use',
    );
  });
  await t.step("pool.release: gone (final), even with addresses still out", () => {
    const next = given(poolMachine, input, [...ACTIVE, reserve("198.18.7.2")])
      .when(releasePool()).then({ state: "gone" });
    assert.equal(next.status, "done");
  });
  await t.step("refuses a second pool.request", () => {
    const snapshot = given(poolMachine, input, ACTIVE).when(request()).thenRefused();
    assert.equal(
      poolRefusal(snapshot as PoolSnapshot, request()),
      'Cannot request pool "198.18.7.0/24": it is already in use',
    );
  });
});

Deno.test("poolMachine in gone refuses everything", () => {
  const { snapshot } = given(poolMachine, input, [request(), releasePool()]);
  for (const event of [request(), reserve("198.18.7.2"), release("198.18.7.1"), releasePool()]) {
    assert.equal(snapshot.can(event), false, event.type);
  }
});

Deno.test("ipNumber reads a dotted address as the 32-bit number IPAM uses", () => {
  assert.equal(ipNumber("198.18.7.1"), 0xc6120701);
  assert.equal(ipNumber("255.255.255.255"), 0xffffffff);
  assert.equal(ipNumber("0.0.0.0"), 0);
});

Deno.test("poolMachine keys an address one way however it is written, taken set in step", () => {
  const held = given(poolMachine, input, [...ACTIVE, reserve("198.18.007.002")]);
  held.when(reserve("198.18.7.2")).thenRefused();
  const context = held.snapshot.context as PoolSnapshot["context"];
  assert.deepEqual([...context.addresses.keys()], ["198.18.7.1", "198.18.7.2"]);
  assert.equal(context.taken.taken, 2);
  assert.equal(
    lowestFree(context, ipNumber("198.18.7.1"), ipNumber("198.18.7.254")),
    ipNumber("198.18.7.3"),
  );
  const after = held.when(release("198.18.7.1")).then({
    state: "active",
    context: { addresses: { "198.18.7.2": "endpoint" }, gateway: null },
  });
  const released = after.context as PoolSnapshot["context"];
  assert.equal(released.taken.taken, 1);
  assert.equal(
    lowestFree(released, ipNumber("198.18.7.1"), ipNumber("198.18.7.254")),
    ipNumber("198.18.7.1"),
  );
});
