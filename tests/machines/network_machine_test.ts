import assert from "node:assert/strict";
import {
  NETWORK_TRANSIENT_STATES,
  NetworkEvent,
  networkIsNoop,
  networkMachine,
  networkRefusal,
  type NetworkSnapshot,
} from "../../machines/network_machine.ts";
import { given } from "../helpers/given.ts";
import { assertSameData } from "../helpers/same_json.ts";

const ID = "0123456789abcdef".repeat(4);
const SHORT = ID.slice(0, 12);
const input = { name: ID };
const BRIDGE = "br-0123456789a";

const create = (at = 1, gateway: string | null = "198.18.7.1/24") => ({
  type: "network.create" as const,
  bridge: BRIDGE,
  mtu: 1450,
  gateway,
  pool: "198.18.7.0/24",
  options: { "com.example.color": "blue" },
  at,
});
const remove = (endpoints = 0, at = 4) => ({ type: "network.delete" as const, endpoints, at });
const lost = (reason = "bridge br-0123456789a is gone", at = 7) => ({
  type: "network.bridge.lost" as const,
  reason,
  at,
});
const ok = (at = 5) => ({ type: "effect.succeeded" as const, at });
const failed = (reason = "RTNETLINK answers: Operation not permitted", at = 6) => ({
  type: "effect.failed" as const,
  reason,
  at,
});

const BRIDGE_CREATE = {
  type: "intent.bridge.create",
  network: ID,
  bridge: BRIDGE,
  mtu: 1450,
  address: "198.18.7.1/24",
};
const BRIDGE_DELETE = { type: "intent.bridge.delete", network: ID, bridge: BRIDGE };

const READY = [create(), ok(2)];
const BROKEN = [...READY, lost(), failed("no such device")];

function refusal(events: Parameters<typeof given>[2], event: NetworkEvent): string {
  const snapshot = given(networkMachine, input, events).when(event).thenRefused();
  return networkRefusal(snapshot as NetworkSnapshot, event);
}

Deno.test("networkMachine in absent", async (t) => {
  await t.step("accepts network.create: creating, asks for the bridge", () => {
    given(networkMachine, input, []).when(create(10)).then({
      state: "creating",
      intents: [BRIDGE_CREATE],
      context: {
        id: ID,
        bridge: BRIDGE,
        mtu: 1450,
        gateway: "198.18.7.1/24",
        pool: "198.18.7.0/24",
        options: { "com.example.color": "blue" },
        createdAt: 10,
        problem: null,
      },
    });
  });
  await t.step("network.create without a gateway asks for a bridge without an address", () => {
    given(networkMachine, input, []).when(create(10, null)).then({
      state: "creating",
      intents: [{ ...BRIDGE_CREATE, address: null }],
      context: { gateway: null },
    });
  });
  for (const event of [remove(), lost(), ok(), failed()]) {
    await t.step(`refuses ${event.type}`, () => {
      given(networkMachine, input, []).when(event).thenRefused();
    });
  }
});

Deno.test("networkMachine in creating", async (t) => {
  await t.step("effect.succeeded: ready", () => {
    given(networkMachine, input, [create()]).when(ok()).then({
      state: "ready",
      context: { problem: null },
    });
  });
  await t.step("effect.failed: gone (final), the reason kept", () => {
    const next = given(networkMachine, input, [create()]).when(failed("bridge exists")).then({
      state: "gone",
      context: { problem: "bridge exists" },
    });
    assert.equal(next.status, "done");
  });
  for (const event of [create(), remove(), lost()]) {
    await t.step(`refuses ${event.type} while the bridge is being made`, () => {
      given(networkMachine, input, [create()]).when(event).thenRefused();
    });
  }
  await t.step("refuses network.delete, saying why", () => {
    assert.equal(
      refusal([create()], remove()),
      `Cannot delete network "${SHORT}": it is creating`,
    );
  });
});

Deno.test("networkMachine in ready", async (t) => {
  await t.step("network.delete without endpoints: deleting, asks to delete the bridge", () => {
    given(networkMachine, input, READY).when(remove(0)).then({
      state: "deleting",
      intents: [BRIDGE_DELETE],
    });
  });
  await t.step("network.bridge.lost: repairing, the reason kept, asks for the bridge again", () => {
    given(networkMachine, input, READY).when(lost("bridge vanished")).then({
      state: "repairing",
      intents: [BRIDGE_CREATE],
      context: { problem: "bridge vanished" },
    });
  });
  await t.step("refuses network.delete, saying how many endpoints are attached", () => {
    assert.equal(
      refusal(READY, remove(2)),
      `Cannot delete network "${SHORT}": 2 endpoints still attached`,
    );
    assert.equal(
      refusal(READY, remove(1)),
      `Cannot delete network "${SHORT}": 1 endpoint still attached`,
    );
  });
  await t.step("refuses network.create (networkIsNoop answers it)", () => {
    given(networkMachine, input, READY).when(create()).thenRefused();
  });
  for (const event of [ok(), failed()]) {
    await t.step(`refuses ${event.type}, no effect being in flight`, () => {
      assert.equal(
        refusal(READY, event),
        `Cannot record "${event.type}" for network "${SHORT}": no effect is in flight (it is ready)`,
      );
    });
  }
});

Deno.test("networkMachine in repairing", async (t) => {
  const repairing = [...READY, lost()];
  await t.step("effect.succeeded: ready, problem cleared", () => {
    given(networkMachine, input, repairing).when(ok()).then({
      state: "ready",
      context: { problem: null },
    });
  });
  await t.step("effect.failed: broken, the reason kept", () => {
    given(networkMachine, input, repairing).when(failed("no such device")).then({
      state: "broken",
      context: { problem: "no such device" },
    });
  });
  for (const event of [create(), remove(), lost()]) {
    await t.step(`refuses ${event.type} while the repair is in flight`, () => {
      given(networkMachine, input, repairing).when(event).thenRefused();
    });
  }
  await t.step("refuses network.bridge.lost, saying why", () => {
    assert.equal(
      refusal(repairing, lost()),
      `Cannot repair network "${SHORT}": it is repairing`,
    );
  });
});

Deno.test("networkMachine in broken", async (t) => {
  await t.step("network.bridge.lost: repairing again, asks for the bridge", () => {
    given(networkMachine, input, BROKEN).when(lost("still gone")).then({
      state: "repairing",
      intents: [BRIDGE_CREATE],
      context: { problem: "still gone" },
    });
  });
  await t.step("network.delete without endpoints: deleting, asks to delete the bridge", () => {
    given(networkMachine, input, BROKEN).when(remove(0)).then({
      state: "deleting",
      intents: [BRIDGE_DELETE],
    });
  });
  await t.step("refuses network.delete, saying how many endpoints are attached", () => {
    assert.equal(
      refusal(BROKEN, remove(3)),
      `Cannot delete network "${SHORT}": 3 endpoints still attached`,
    );
  });
  await t.step("refuses network.create, naming the problem", () => {
    assert.equal(
      refusal(BROKEN, create()),
      `Cannot create network "${SHORT}": its bridge is broken (no such device)`,
    );
  });
  for (const event of [ok(), failed()]) {
    await t.step(`refuses ${event.type}`, () => {
      given(networkMachine, input, BROKEN).when(event).thenRefused();
    });
  }
});

Deno.test("networkMachine in deleting", async (t) => {
  await t.step("effect.succeeded: gone (final)", () => {
    const next = given(networkMachine, input, [...READY, remove()]).when(ok()).then({
      state: "gone",
    });
    assert.equal(next.status, "done");
  });
  await t.step("effect.failed: back to ready, no problem recorded", () => {
    given(networkMachine, input, [...READY, remove()]).when(failed()).then({
      state: "ready",
      context: { problem: null },
    });
  });
  await t.step("effect.failed after a failed repair: back to broken, its problem kept", () => {
    given(networkMachine, input, [...BROKEN, remove()]).when(failed()).then({
      state: "broken",
      context: { problem: "no such device" },
    });
  });
  for (const event of [create(), remove(), lost()]) {
    await t.step(`refuses ${event.type} while deletion is in flight`, () => {
      given(networkMachine, input, [...READY, remove()]).when(event).thenRefused();
    });
  }
});

Deno.test("networkMachine in gone refuses everything", async (t) => {
  const histories: [string, Parameters<typeof given>[2]][] = [
    ["after a failed create", [create(), failed()]],
    ["after deletion", [...READY, remove(), ok()]],
  ];
  for (const [name, events] of histories) {
    await t.step(name, () => {
      const { snapshot } = given(networkMachine, input, events);
      assert.equal(snapshot.status, "done");
      for (const event of [create(), remove(), lost(), ok(), failed()]) {
        given(networkMachine, input, events).when(event).thenRefused();
      }
      assert.equal(
        networkRefusal(snapshot as NetworkSnapshot, remove()),
        `Cannot delete network "${SHORT}": it is gone`,
      );
    });
  }
});

Deno.test("networkIsNoop: create of a ready network changes nothing", () => {
  const cases: [Parameters<typeof given>[2], boolean][] = [
    [[], false],
    [[create()], false],
    [READY, true],
    [[...READY, lost()], false],
    [BROKEN, false],
    [[...READY, remove()], false],
  ];
  for (const [events, expected] of cases) {
    const { snapshot } = given(networkMachine, input, events);
    assert.equal(
      networkIsNoop(snapshot as NetworkSnapshot, create()),
      expected,
      String(snapshot.value),
    );
  }
  const { snapshot } = given(networkMachine, input, READY);
  for (const event of [remove(), lost(), ok(), failed()]) {
    assert.equal(networkIsNoop(snapshot as NetworkSnapshot, event), false, event.type);
  }
});

Deno.test("NetworkEvent parses every event a test here sends and rejects a missing at", () => {
  for (const event of [create(), create(1, null), remove(2), lost(), ok(), failed()]) {
    assertSameData(NetworkEvent.parse(event), event);
  }
  assert.equal(NetworkEvent.safeParse({ type: "network.delete", endpoints: 0 }).success, false);
  assert.equal(NetworkEvent.safeParse({ ...remove(), endpoints: -1 }).success, false);
});

Deno.test("NETWORK_TRANSIENT_STATES are the states with an effect in flight", () => {
  assert.deepEqual([...NETWORK_TRANSIENT_STATES].sort(), ["creating", "deleting", "repairing"]);
  for (const state of NETWORK_TRANSIENT_STATES) {
    assert.ok(Object.hasOwn(networkMachine.config.states ?? {}, state), state);
  }
});
