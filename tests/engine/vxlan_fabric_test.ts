// The fabric's forwarding entries follow other nodes' endpoint records: one MAC entry and one
// neighbour entry per endpoint, and one flood entry per remote node and network, made once the
// network's device is here.
import assert from "node:assert/strict";
import type { EndpointContext } from "../../machines/endpoint_machine.ts";
import type { NetPlumbing } from "../../src/backends/net_plumbing.ts";
import type { VxlanPlumbing } from "../../src/backends/vxlan_plumbing.ts";
import { createFabric } from "../../src/engine/vxlan_fabric.ts";
import type { LogRecord } from "../../src/log/store.ts";

const NET = "4e7a11".padEnd(64, "0");
const DEVICE = "bthv4e7a1100000";
const FLOOD = "00:00:00:00:00:00";
const BRIDGE = "bthb4e7a1100000";

function endpoint(id: string, node: string, underlay: string, mac: string): EndpointContext {
  return {
    id,
    networkId: NET,
    address: `198.18.41.${parseInt(mac.slice(-2), 16)}/24`,
    mac,
    host: "",
    peer: "",
    bridge: "bthb4e7a1100000",
    mtu: 1450,
    sandboxKey: null,
    plumbed: false,
    problem: null,
    createdAt: 1,
    node,
    underlay,
  };
}

function record(actor: string): LogRecord {
  return { seq: 1, at: 1, actor, type: "endpoint.create", v: 1, data: {} };
}

function setup(known: { context: EndpointContext; value: string }[] = []) {
  const calls: string[] = [];
  const vxlan: VxlanPlumbing = {
    createVxlan: (name, { vni, local, bridge, mtu }) =>
      Promise.resolve(void calls.push(`vxlan ${name} ${vni} ${local} ${bridge} ${mtu}`)),
    deleteVxlan: (name) => Promise.resolve(void calls.push(`del ${name}`)),
    addForwarding: (device, mac, dst) =>
      Promise.resolve(void calls.push(`+${device} ${mac} ${dst}`)),
    removeForwarding: (device, mac, dst) =>
      Promise.resolve(void calls.push(`-${device} ${mac} ${dst}`)),
    addNeighbour: (device, bridge, address, mac) =>
      Promise.resolve(void calls.push(`+neigh ${device} ${bridge} ${address} ${mac}`)),
    removeNeighbour: (device, bridge, address, mac) =>
      Promise.resolve(void calls.push(`-neigh ${device} ${bridge} ${address} ${mac}`)),
  };
  const plumbing = {
    createBridge: (name: string) => Promise.resolve(void calls.push(`bridge ${name}`)),
    deleteBridge: (name: string) => Promise.resolve(void calls.push(`del ${name}`)),
  } as unknown as NetPlumbing;
  const fabric = createFabric({
    node: "a",
    advertise: "198.19.0.1",
    plumbing,
    vxlan,
    endpoints: () => known,
    warn: (line) => calls.push(`warn ${line}`),
  });
  return { fabric, calls, vxlan };
}

Deno.test("attaching a network forwards to the other nodes' endpoints already known", async () => {
  const { fabric, calls } = setup([
    { context: endpoint("e1", "b", "198.19.0.2", "02:42:c6:12:29:03"), value: "joined" },
    { context: endpoint("e2", "a", "198.19.0.1", "02:42:c6:12:29:02"), value: "joined" },
    { context: endpoint("e3", "c", "198.19.0.3", "02:42:c6:12:29:04"), value: "gone" },
  ]);
  await fabric.attach(NET, "bthb4e7a1100000", null, { bridgeToo: true });
  assert.deepEqual(calls, [
    "bridge bthb4e7a1100000",
    `vxlan ${DEVICE} ${0x4e7a11} 198.19.0.1 bthb4e7a1100000 1450`,
    `+${DEVICE} ${FLOOD} 198.19.0.2`,
    `+${DEVICE} 02:42:c6:12:29:03 198.19.0.2`,
    `+neigh ${DEVICE} ${BRIDGE} 198.18.41.3 02:42:c6:12:29:03`,
  ]);
});

Deno.test("one flood entry per remote node, removed with its last endpoint", async () => {
  const { fabric, calls } = setup();
  await fabric.attach(NET, "bthb4e7a1100000", 1450, { bridgeToo: false });
  calls.length = 0;
  const b1 = endpoint("e1", "b", "198.19.0.2", "02:42:c6:12:29:03");
  const b2 = endpoint("e2", "b", "198.19.0.2", "02:42:c6:12:29:05");
  fabric.heard(record("endpoint/e1"), { context: b1, value: "created" });
  fabric.heard(record("endpoint/e2"), { context: b2, value: "created" });
  // Heard again (joined): nothing new.
  fabric.heard(record("endpoint/e1"), { context: b1, value: "joined" });
  // This node's own endpoint: its bridge learns it, no entry.
  fabric.heard(record("endpoint/e9"), {
    context: endpoint("e9", "a", "198.19.0.1", "02:42:c6:12:29:09"),
    value: "joined",
  });
  fabric.heard(record("endpoint/e1"), { context: b1, value: "gone" });
  fabric.heard(record("endpoint/e2"), { context: b2, value: "gone" });
  await fabric.settled();
  assert.deepEqual(calls, [
    `+${DEVICE} ${FLOOD} 198.19.0.2`,
    `+${DEVICE} 02:42:c6:12:29:03 198.19.0.2`,
    `+neigh ${DEVICE} ${BRIDGE} 198.18.41.3 02:42:c6:12:29:03`,
    `+${DEVICE} 02:42:c6:12:29:05 198.19.0.2`,
    `+neigh ${DEVICE} ${BRIDGE} 198.18.41.5 02:42:c6:12:29:05`,
    `-neigh ${DEVICE} ${BRIDGE} 198.18.41.3 02:42:c6:12:29:03`,
    `-${DEVICE} 02:42:c6:12:29:03 198.19.0.2`,
    `-neigh ${DEVICE} ${BRIDGE} 198.18.41.5 02:42:c6:12:29:05`,
    `-${DEVICE} 02:42:c6:12:29:05 198.19.0.2`,
    `-${DEVICE} ${FLOOD} 198.19.0.2`,
  ]);
});

Deno.test("endpoints of a network with no device here make no entry", async () => {
  const { fabric, calls } = setup();
  fabric.heard(record("endpoint/e1"), {
    context: endpoint("e1", "b", "198.19.0.2", "02:42:c6:12:29:03"),
    value: "joined",
  });
  await fabric.settled();
  assert.deepEqual(calls, []);
});

Deno.test("a VXLAN device that cannot be made leaves no copy of the bridge behind", async () => {
  const { fabric, calls, vxlan } = setup();
  vxlan.createVxlan = () => Promise.reject(new Error("Cannot create VXLAN device"));
  await assert.rejects(
    fabric.attach(NET, BRIDGE, null, { bridgeToo: true }),
    /Cannot create VXLAN device/,
  );
  assert.deepEqual(calls, [`bridge ${BRIDGE}`, `del ${BRIDGE}`]);
});
