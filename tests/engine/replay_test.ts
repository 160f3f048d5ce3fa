// Replay is a pure fold: for every kind, the log of an actor's events gives the snapshot that
// stepping the machine live gave, and no effect runs (replay has no backend to call).
import assert from "node:assert/strict";
import { type AnyMachineSnapshot, initialTransition, transition } from "xstate";
import { KINDS } from "../../machines/mod.ts";
import { volumeMachine } from "../../machines/volume_machine.ts";
import { initialSnapshot, replay, replayInSlices } from "../../src/engine/replay.ts";
import type { LogRecord } from "../../src/log/store.ts";
import { assertSameData } from "../helpers/same_json.ts";

type Event = { type: string; [field: string]: unknown };
const NET = "a1".repeat(32);
const EP = "b2".repeat(32);

const HISTORIES: Record<string, Event[]> = {
  [`volume/db`]: [
    { type: "volume.create", opts: { mode: "0700" } },
    { type: "effect.succeeded", mountpoint: "/v/db/_data" },
    { type: "volume.mount", mountId: "m1" },
    { type: "effect.succeeded" },
    { type: "volume.mount", mountId: "m1" },
  ],
  [`pool/198.18.7.0/24`]: [
    { type: "pool.request", cidr: "198.18.7.0/24", space: "BerthLocal", options: {} },
    { type: "pool.address.reserve", address: "198.18.7.1", role: "gateway" },
    { type: "pool.address.reserve", address: "198.18.7.2", role: "endpoint" },
    { type: "pool.address.release", address: "198.18.7.2" },
  ],
  [`network/${NET}`]: [
    {
      type: "network.create",
      bridge: "bthba1a1a1a1a1a",
      mtu: 1400,
      gateway: "198.18.7.1/24",
      pool: "198.18.7.0/24",
      options: { mtu: "1400" },
    },
    { type: "effect.succeeded" },
    { type: "network.bridge.lost", reason: "gone" },
  ],
  [`endpoint/${EP}`]: [
    {
      type: "endpoint.create",
      networkId: NET,
      address: "198.18.7.2/24",
      mac: "",
      host: "bthhb2b2b2b2b2b",
      peer: "bthcb2b2b2b2b2b",
      bridge: "bthba1a1a1a1a1a",
      mtu: null,
    },
    { type: "endpoint.join", sandboxKey: "/var/run/docker/netns/x" },
    { type: "effect.succeeded" },
  ],
};

Deno.test("replay of each kind's log gives the snapshot the live machine reached", async () => {
  let seq = 0;
  const records: LogRecord[] = [];
  const live = new Map<string, unknown>();
  for (const [actor, events] of Object.entries(HISTORIES)) {
    const kind = KINDS[actor.slice(0, actor.indexOf("/")) as keyof typeof KINDS];
    let [snapshot] = initialTransition(kind.machine, { name: actor.slice(actor.indexOf("/") + 1) });
    for (const { type, ...data } of events) {
      const at = 100 + seq;
      const [next] = transition(kind.machine, snapshot, { type, at, ...data } as never);
      assert.notEqual(next, snapshot, `${actor}: ${type} applies`);
      snapshot = next;
      records.push({ seq: ++seq, at, actor, type, v: kind.version, data });
    }
    live.set(actor, { value: snapshot.value, context: snapshot.context });
  }
  const warnings: string[] = [];
  const replayed = replay(records, (message) => warnings.push(message));
  assert.deepEqual(warnings, []);
  const plain = (map: Map<string, { value: unknown; context: unknown }>) =>
    new Map([...map].map(([id, s]) => [id, { value: s.value, context: s.context }]));
  assertSameData(plain(replayed), live);
  // The sliced fold, over an async source as the log reader gives it, folds the same.
  async function* source() {
    yield* records;
  }
  assertSameData(plain(await replayInSlices(source())), live);
});

Deno.test("replay refuses a record that does not fit its kind's schema, naming it", () => {
  const record: LogRecord = {
    seq: 1,
    at: 1,
    actor: "pool/198.18.7.0/24",
    type: "pool.address.reserve",
    v: 1,
    data: { address: "198.18.7.1", role: "mayor" },
  };
  assert.throws(
    () => replay([record]),
    /Record 1 \(pool\/198\.18\.7\.0\/24 pool\.address\.reserve\)/,
  );
});

Deno.test("initialSnapshot gives what xstate's initialTransition gives, for every kind", () => {
  for (const [kindName, kind] of Object.entries(KINDS)) {
    const name = `${kindName}-x`;
    const [expected, actions] = initialTransition(kind.machine, { name });
    // The shortcut is only right while no initial state has entry actions.
    assert.deepEqual(actions, [], `${kindName}: no entry actions on the initial state`);
    const made = initialSnapshot(`${kindName}/${name}`);
    assert.deepEqual(
      { value: made.value, status: made.status, context: made.context },
      { value: expected.value, status: expected.status, context: expected.context },
    );
    assert.notEqual(made.context, initialSnapshot(`${kindName}/other`).context);
  }
});

Deno.test("replayed actors in one state share its nodes and tags, and step as xstate's own do", () => {
  const records = ["a", "b"].flatMap((name, i) => [
    {
      seq: 2 * i + 1,
      at: 1,
      actor: `volume/${name}`,
      type: "volume.create",
      v: 1,
      data: { opts: {} },
    },
    {
      seq: 2 * i + 2,
      at: 1,
      actor: `volume/${name}`,
      type: "effect.succeeded",
      v: 1,
      data: { mountpoint: `/v/${name}` },
    },
  ]);
  const actors = replay(records);
  const [a, b] = [actors.get("volume/a")!, actors.get("volume/b")!];
  const shared = (snapshot: AnyMachineSnapshot) =>
    snapshot as unknown as { _nodes: unknown; tags: unknown };
  assert.equal(shared(a)._nodes, shared(b)._nodes);
  assert.equal(shared(a).tags, shared(b).tags);
  // The lean snapshot steps exactly as one made by xstate's own transition().
  const event = { type: "volume.mount" as const, mountId: "m", at: 2 };
  const [own] = transition(volumeMachine, a, event);
  const [fromXstate] = transition(
    volumeMachine,
    volumeMachine.resolveState({ value: "unmounted", context: a.context }),
    event,
  );
  assert.equal(own.value, fromXstate.value);
  assert.deepEqual(own.context, fromXstate.context);
});
