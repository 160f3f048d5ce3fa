// A List reply made in pieces reads exactly as the one JSON document it stands for, however many
// volumes there are, and a streamed reply carries it whole over a real socket.
import assert from "node:assert/strict";
import type { VolumeState } from "../../../src/engine/volume_service.ts";
import { JsonPieces, reply } from "../../../src/transport/docker/respond.ts";
import { listPieces } from "../../../src/transport/docker/volume.ts";

function states(count: number): VolumeState[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `v"${i}`, // a quote in a name must stay escaped across pieces
    mountpoint: `/var/lib/berth/volumes/v${i}/_data`,
    createdAt: 1_700_000_000_000 + i,
    state: i % 7 === 0 ? "missing" : "mounted",
    mounts: i % 3,
    problem: i % 7 === 0 ? "gone" : null,
  }));
}

Deno.test("listPieces joins to one ListResponse, for none, one, a slice and several slices", () => {
  for (const count of [0, 1, 2000, 4001]) {
    const text = [...listPieces(states(count))].join("");
    const parsed = JSON.parse(text) as { Volumes: { Name: string; Status: object }[] };
    assert.equal(parsed.Volumes.length, count);
    assert.deepEqual(parsed.Volumes.map((volume) => volume.Name), states(count).map((s) => s.name));
    if (count > 0) {
      assert.deepEqual(parsed.Volumes[0]!.Status, { state: "missing", mounts: 0, problem: "gone" });
    }
  }
});

Deno.test("a reply in pieces is streamed whole, each piece made only when asked for", () => {
  let made = 0;
  function* pieces() {
    for (let i = 0; i < 5; i++) {
      made++;
      yield i === 0 ? "[" + i : "," + i;
    }
    yield "]";
  }
  const response = reply(new JsonPieces(pieces()));
  assert.equal(made, 0, "nothing is made before the body is written");
  assert.notEqual(typeof response.body, "string");
  const text = [...{ [Symbol.iterator]: () => response.body as Iterator<string> }].join("");
  assert.deepEqual(JSON.parse(text), [0, 1, 2, 3, 4]);
  assert.equal(made, 5);
});
