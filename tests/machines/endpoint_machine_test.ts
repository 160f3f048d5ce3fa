import assert from "node:assert/strict";
import {
  ENDPOINT_TRANSIENT_STATES,
  EndpointEvent,
  endpointIsNoop,
  endpointMachine,
  endpointRefusal,
  type EndpointSnapshot,
} from "../../machines/endpoint_machine.ts";
import { given } from "../helpers/given.ts";

type Events = Parameters<typeof given>[2];

const ID = "fedcba9876543210".repeat(4);
const SHORT = ID.slice(0, 12);
const NETWORK = "0123456789abcdef".repeat(4);
const OTHER_NETWORK = "00112233445566778899aabbccddeeff".repeat(2);
const input = { name: ID };
const HOST = "bh-fedcba9876";
const PEER = "bp-fedcba9876";
const BRIDGE = "br-0123456789a";
const SANDBOX = "/var/run/docker/netns/3f2a9c1b0d4e";

const create = (at = 1, networkId = NETWORK, address = "198.18.7.2/24") => ({
  type: "endpoint.create" as const,
  networkId,
  address,
  mac: "02:42:c6:12:07:02",
  host: HOST,
  peer: PEER,
  bridge: BRIDGE,
  mtu: 1450,
  at,
});
const join = (sandboxKey = SANDBOX, at = 2) => ({
  type: "endpoint.join" as const,
  sandboxKey,
  at,
});
const leave = (at = 3) => ({ type: "endpoint.leave" as const, at });
const remove = (at = 4) => ({ type: "endpoint.delete" as const, at });
const lost = (reason = "veth bh-fedcba9876 is gone", at = 7) => ({
  type: "endpoint.veth.lost" as const,
  reason,
  at,
});
const ok = (at = 5) => ({ type: "effect.succeeded" as const, at });
const failed = (reason = "RTNETLINK answers: File exists", at = 6) => ({
  type: "effect.failed" as const,
  reason,
  at,
});

const VETH_CREATE = {
  type: "intent.veth.create",
  endpoint: ID,
  host: HOST,
  peer: PEER,
  bridge: BRIDGE,
  mtu: 1450,
  network: NETWORK,
  mac: "02:42:c6:12:07:02",
};
const VETH_DELETE = { type: "intent.veth.delete", endpoint: ID, host: HOST };

const CREATED = [create()];
const JOINED = [...CREATED, join(), ok()];
/** Created again after a Leave: the pair exists and must go at DeleteEndpoint. */
const LEFT = [...JOINED, leave()];

function refusal(events: Events, event: EndpointEvent): string {
  const snapshot = given(endpointMachine, input, events).when(event).thenRefused();
  return endpointRefusal(snapshot as EndpointSnapshot, event);
}

Deno.test("endpointMachine in absent", async (t) => {
  await t.step("accepts endpoint.create: created, no effect (the pair is made at Join)", () => {
    given(endpointMachine, input, []).when(create(10)).then({
      state: "created",
      context: {
        id: ID,
        networkId: NETWORK,
        address: "198.18.7.2/24",
        mac: "02:42:c6:12:07:02",
        host: HOST,
        peer: PEER,
        bridge: BRIDGE,
        mtu: 1450,
        sandboxKey: null,
        plumbed: false,
        problem: null,
        createdAt: 10,
      },
    });
  });
  for (const event of [join(), leave(), remove(), lost(), ok(), failed()]) {
    await t.step(`refuses ${event.type}`, () => {
      given(endpointMachine, input, []).when(event).thenRefused();
    });
  }
});

Deno.test("endpointMachine in created", async (t) => {
  await t.step("endpoint.join: joining, the sandbox kept, asks for the veth pair", () => {
    given(endpointMachine, input, CREATED).when(join()).then({
      state: "joining",
      intents: [VETH_CREATE],
      context: { sandboxKey: SANDBOX, plumbed: false },
    });
  });
  await t.step("endpoint.delete before any pair was made: gone (final), no effect", () => {
    const next = given(endpointMachine, input, CREATED).when(remove()).then({ state: "gone" });
    assert.equal(next.status, "done");
  });
  await t.step("endpoint.delete after a Leave: deleting, asks to delete the pair", () => {
    given(endpointMachine, input, LEFT).when(remove()).then({
      state: "deleting",
      intents: [VETH_DELETE],
    });
  });
  await t.step("endpoint.join after a Leave: joining again", () => {
    given(endpointMachine, input, LEFT).when(join("/var/run/docker/netns/aaaabbbbcccc")).then({
      state: "joining",
      intents: [VETH_CREATE],
      context: { sandboxKey: "/var/run/docker/netns/aaaabbbbcccc", plumbed: true },
    });
  });
  await t.step("refuses endpoint.create on another network, naming what it is", () => {
    assert.equal(
      refusal(CREATED, create(9, OTHER_NETWORK)),
      `Cannot create endpoint "${SHORT}": it exists on network "${NETWORK.slice(0, 12)}" ` +
        `with address "198.18.7.2/24"`,
    );
  });
  await t.step("refuses endpoint.create of the same endpoint (endpointIsNoop answers it)", () => {
    given(endpointMachine, input, CREATED).when(create()).thenRefused();
  });
  await t.step("refuses endpoint.leave (endpointIsNoop answers it)", () => {
    given(endpointMachine, input, CREATED).when(leave()).thenRefused();
  });
  await t.step("refuses endpoint.veth.lost: there is no pair to repair", () => {
    assert.equal(refusal(LEFT, lost()), `Cannot repair endpoint "${SHORT}": it is created`);
  });
  for (const event of [ok(), failed()]) {
    await t.step(`refuses ${event.type}, no effect being in flight`, () => {
      assert.equal(
        refusal(CREATED, event),
        `Cannot record "${event.type}" for endpoint "${SHORT}": no effect is in flight ` +
          `(it is created)`,
      );
    });
  }
});

Deno.test("endpointMachine in joining", async (t) => {
  const joining = [...CREATED, join()];
  await t.step("effect.succeeded: joined, plumbed", () => {
    given(endpointMachine, input, joining).when(ok()).then({
      state: "joined",
      context: { plumbed: true, sandboxKey: SANDBOX, problem: null },
    });
  });
  await t.step("effect.failed: created, the reason kept, not plumbed, no sandbox", () => {
    given(endpointMachine, input, joining).when(failed("no such bridge")).then({
      state: "created",
      context: { problem: "no such bridge", plumbed: false, sandboxKey: null },
    });
  });
  await t.step("effect.failed of a second Join: created, still plumbed", () => {
    given(endpointMachine, input, [...JOINED, join()]).when(failed()).then({
      state: "created",
      context: { plumbed: true, sandboxKey: null },
    });
  });
  for (const event of [create(), join(), leave(), remove(), lost()]) {
    await t.step(`refuses ${event.type} while the pair is being made`, () => {
      given(endpointMachine, input, joining).when(event).thenRefused();
    });
  }
  await t.step("refuses endpoint.leave, saying why", () => {
    assert.equal(refusal(joining, leave()), `Cannot leave endpoint "${SHORT}": it is joining`);
  });
  await t.step("refuses endpoint.create of the same endpoint, saying why", () => {
    assert.equal(refusal(joining, create()), `Cannot create endpoint "${SHORT}": it is joining`);
  });
});

Deno.test("endpointMachine in joined", async (t) => {
  await t.step("endpoint.leave: created, no effect, the pair still known", () => {
    given(endpointMachine, input, JOINED).when(leave()).then({
      state: "created",
      context: { plumbed: true, sandboxKey: null },
    });
  });
  await t.step("endpoint.join again: joining, asks for the pair again (idempotent)", () => {
    given(endpointMachine, input, JOINED).when(join("/var/run/docker/netns/aaaabbbbcccc")).then({
      state: "joining",
      intents: [VETH_CREATE],
      context: { sandboxKey: "/var/run/docker/netns/aaaabbbbcccc" },
    });
  });
  await t.step("endpoint.delete without Leave: deleting, asks to delete the pair", () => {
    given(endpointMachine, input, JOINED).when(remove()).then({
      state: "deleting",
      intents: [VETH_DELETE],
    });
  });
  await t.step("endpoint.veth.lost: joining, the reason kept, asks for the pair again", () => {
    given(endpointMachine, input, JOINED).when(lost("veth vanished")).then({
      state: "joining",
      intents: [VETH_CREATE],
      context: { problem: "veth vanished", sandboxKey: SANDBOX },
    });
  });
  await t.step("a repaired pair: joined, problem cleared", () => {
    given(endpointMachine, input, [...JOINED, lost()]).when(ok()).then({
      state: "joined",
      context: { problem: null, plumbed: true },
    });
  });
  await t.step("a failed repair: created, the reason kept", () => {
    given(endpointMachine, input, [...JOINED, lost()]).when(failed("no such bridge")).then({
      state: "created",
      context: { problem: "no such bridge", plumbed: true },
    });
  });
  await t.step("refuses endpoint.create of the same endpoint (endpointIsNoop answers it)", () => {
    given(endpointMachine, input, JOINED).when(create()).thenRefused();
  });
  await t.step("refuses endpoint.create at another address, naming what it is", () => {
    assert.equal(
      refusal(JOINED, create(9, NETWORK, "198.18.7.3/24")),
      `Cannot create endpoint "${SHORT}": it exists on network "${NETWORK.slice(0, 12)}" ` +
        `with address "198.18.7.2/24"`,
    );
  });
  for (const event of [ok(), failed()]) {
    await t.step(`refuses ${event.type}`, () => {
      given(endpointMachine, input, JOINED).when(event).thenRefused();
    });
  }
});

Deno.test("endpointMachine in deleting", async (t) => {
  const deleting = [...LEFT, remove()];
  await t.step("effect.succeeded: gone (final)", () => {
    const next = given(endpointMachine, input, deleting).when(ok()).then({ state: "gone" });
    assert.equal(next.status, "done");
  });
  await t.step("effect.failed: created, the reason kept, still plumbed", () => {
    given(endpointMachine, input, deleting).when(failed("device busy")).then({
      state: "created",
      context: { problem: "device busy", plumbed: true, sandboxKey: null },
    });
  });
  await t.step("effect.failed of a delete without Leave: created, no sandbox", () => {
    given(endpointMachine, input, [...JOINED, remove()]).when(failed()).then({
      state: "created",
      context: { plumbed: true, sandboxKey: null },
    });
  });
  await t.step("a failed delete can be tried again", () => {
    given(endpointMachine, input, [...deleting, failed()]).when(remove()).then({
      state: "deleting",
      intents: [VETH_DELETE],
    });
  });
  for (const event of [create(), join(), leave(), remove(), lost()]) {
    await t.step(`refuses ${event.type} while deletion is in flight`, () => {
      given(endpointMachine, input, deleting).when(event).thenRefused();
    });
  }
  await t.step("refuses endpoint.join, saying why", () => {
    assert.equal(refusal(deleting, join()), `Cannot join endpoint "${SHORT}": it is deleting`);
  });
});

Deno.test("endpointMachine in gone refuses everything", async (t) => {
  const histories: [string, Events][] = [
    ["after a delete without a pair", [...CREATED, remove()]],
    ["after deletion of the pair", [...LEFT, remove(), ok()]],
  ];
  for (const [name, events] of histories) {
    await t.step(name, () => {
      const { snapshot } = given(endpointMachine, input, events);
      assert.equal(snapshot.status, "done");
      for (const event of [create(), join(), leave(), remove(), lost(), ok(), failed()]) {
        given(endpointMachine, input, events).when(event).thenRefused();
      }
      assert.equal(
        endpointRefusal(snapshot as EndpointSnapshot, remove()),
        `Cannot delete endpoint "${SHORT}": it is gone`,
      );
    });
  }
});

Deno.test("endpointIsNoop: create with the same network and address changes nothing", () => {
  const cases: [Events, ReturnType<typeof create>, boolean][] = [
    [[], create(), false],
    [CREATED, create(9), true],
    [JOINED, create(9), true],
    [LEFT, create(9), true],
    [[...CREATED, join()], create(9), false],
    [[...LEFT, remove()], create(9), false],
    [CREATED, create(9, OTHER_NETWORK), false],
    [CREATED, create(9, NETWORK, "198.18.7.3/24"), false],
  ];
  for (const [events, event, expected] of cases) {
    const { snapshot } = given(endpointMachine, input, events);
    assert.equal(
      endpointIsNoop(snapshot as EndpointSnapshot, event),
      expected,
      `${String(snapshot.value)} ${event.networkId.slice(0, 4)} ${event.address}`,
    );
  }
});

Deno.test("endpointIsNoop: leave when not joined changes nothing", () => {
  const cases: [Events, boolean][] = [
    [[], false],
    [CREATED, true],
    [LEFT, true],
    [[...CREATED, join()], false],
    [JOINED, false],
    [[...LEFT, remove()], false],
  ];
  for (const [events, expected] of cases) {
    const { snapshot } = given(endpointMachine, input, events);
    assert.equal(endpointIsNoop(snapshot as EndpointSnapshot, leave()), expected);
  }
  const { snapshot } = given(endpointMachine, input, CREATED);
  for (const event of [join(), remove(), lost(), ok(), failed()]) {
    assert.equal(endpointIsNoop(snapshot as EndpointSnapshot, event), false, event.type);
  }
});

Deno.test("EndpointEvent parses every event a test here sends and rejects a missing at", () => {
  for (const event of [create(), join(), leave(), remove(), lost(), ok(), failed()]) {
    assert.deepEqual(EndpointEvent.parse(event), event);
  }
  assert.equal(EndpointEvent.safeParse({ type: "endpoint.leave" }).success, false);
  assert.equal(EndpointEvent.safeParse({ ...create(), host: "" }).success, false);
});

Deno.test("ENDPOINT_TRANSIENT_STATES are the states with an effect in flight", () => {
  assert.deepEqual([...ENDPOINT_TRANSIENT_STATES].sort(), ["deleting", "joining"]);
  for (const state of ENDPOINT_TRANSIENT_STATES) {
    assert.ok(Object.hasOwn(endpointMachine.config.states ?? {}, state), state);
  }
});
