// Network and endpoint reconcile look at the host's links once between them: one `ip -json link`
// for every network and endpoint, however many there are (a fake at the plumbing interface).
import assert from "node:assert/strict";
import type { LinkInfo, LinkState, NetPlumbing } from "../../src/backends/net_plumbing.ts";
import { createEngine } from "../../src/engine/engine.ts";
import {
  createEndpointEffects,
  createNetworkEffects,
  sharedLinkSurvey,
} from "../../src/engine/network_effects.ts";
import { createMemoryStore } from "../../src/log/memory_store.ts";
import type { LogRecord } from "../../src/log/store.ts";

function plumbingWith(links: Map<string, LinkState>) {
  const looks = { count: 0 };
  const refuse = () => Promise.reject(new Error("no effect expected"));
  const plumbing: NetPlumbing = {
    createBridge: refuse,
    deleteBridge: refuse,
    createVeth: refuse,
    deleteVeth: refuse,
    linkExists: () => Promise.reject(new Error("reconcile must not look link by link")),
    linkStates() {
      looks.count++;
      return Promise.resolve(links);
    },
    listLinks: () => Promise.resolve([] as LinkInfo[]),
  };
  return { plumbing, looks };
}

Deno.test("reconcile of networks and endpoints takes one look at the host's links", async () => {
  const records: LogRecord[] = [];
  const add = (actor: string, type: string, data: Record<string, unknown> = {}) =>
    records.push({ seq: records.length + 1, at: 1, actor, type, v: 1, data });
  for (let n = 0; n < 20; n++) {
    const network = `${n}`.padStart(64, "a");
    add(`network/${network}`, "network.create", {
      bridge: `bthb${n}`,
      mtu: null,
      gateway: null,
      pool: null,
      options: {},
    });
    add(`network/${network}`, "effect.succeeded");
    const endpoint = `${n}`.padStart(64, "e");
    add(`endpoint/${endpoint}`, "endpoint.create", {
      networkId: network,
      address: "",
      mac: "",
      host: `bthh${n}`,
      peer: `bthc${n}`,
      bridge: `bthb${n}`,
      mtu: null,
    });
    add(`endpoint/${endpoint}`, "endpoint.join", { sandboxKey: "/var/run/docker/netns/x" });
    add(`endpoint/${endpoint}`, "effect.succeeded");
  }
  // Bridge 3 and veth 5 are gone.
  const link = (name: string, kind: string, master: string | null): [string, LinkState] => [
    name,
    { name, kind, master, up: true, owner: null, mtu: 1500, addresses: [] },
  ];
  const present = new Map(
    Array.from({ length: 20 }, (_, n) => [
      link(`bthb${n}`, "bridge", null),
      link(`bthh${n}`, "veth", `bthb${n}`),
    ]).flat().filter(([name]) => name !== "bthb3" && name !== "bthh5"),
  );
  const { plumbing, looks } = plumbingWith(present);
  const links = sharedLinkSurvey(plumbing);
  const engine = createEngine({
    store: createMemoryStore(records),
    effects: {
      network: createNetworkEffects(plumbing, links),
      endpoint: createEndpointEffects(plumbing, links),
    },
  });
  const report = await engine.reconcile().catch((error) => error);
  assert.equal(looks.count, 1);
  assert.ok(Array.isArray(report), String(report));
  assert.deepEqual(report.map((line: { actor: string }) => line.actor), [
    `endpoint/${"5".padStart(64, "e")}`,
    `network/${"3".padStart(64, "a")}`,
  ]);
});

Deno.test("a cluster network whose VXLAN device fails leaves no bridge behind", async () => {
  const calls: string[] = [];
  const { plumbing } = plumbingWith(new Map());
  plumbing.createBridge = (name) => Promise.resolve(void calls.push(`bridge ${name}`));
  plumbing.deleteBridge = (name) => Promise.resolve(void calls.push(`del ${name}`));
  const fabric = {
    node: "a",
    advertise: "198.19.0.1",
    attach: () => Promise.reject(new Error("Cannot create VXLAN device")),
    detach: (network: string) => Promise.resolve(void calls.push(`detach ${network}`)),
    heard: () => {},
    resume: () => Promise.resolve(),
    settled: () => Promise.resolve(),
  };
  const effects = createNetworkEffects(plumbing, sharedLinkSurvey(plumbing), fabric);
  const network = "4e7a11".padEnd(64, "0");
  await assert.rejects(
    effects.run({
      type: "intent.bridge.create",
      network,
      bridge: "bthb4e7a1100000",
      mtu: 1450,
      address: "198.18.41.1/24",
    }),
    /Cannot create VXLAN device/,
  );
  assert.deepEqual(calls, ["bridge bthb4e7a1100000", `detach ${network}`, "del bthb4e7a1100000"]);
});
