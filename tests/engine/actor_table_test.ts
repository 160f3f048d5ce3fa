import assert from "node:assert/strict";
import { createActorTable } from "../../src/engine/_actor_table.ts";

Deno.test("createActorTable lists one kind without the others, and forgets what it deletes", () => {
  const table = createActorTable<{ id: string; n: number }>();
  table.set({ id: "volume/a", n: 1 });
  table.set({ id: "pool/198.18.0.0/24", n: 2 });
  table.set({ id: "volume/b", n: 3 });
  table.set({ id: "volume/a", n: 4 });
  assert.deepEqual([...table.ofKind("volume")].map((actor) => actor.n), [4, 3]);
  assert.deepEqual([...table.ofKind("pool")].map((actor) => actor.id), ["pool/198.18.0.0/24"]);
  assert.deepEqual([...table.ofKind("network")], []);
  table.delete("volume/a");
  assert.equal(table.get("volume/a"), undefined);
  assert.deepEqual([...table.ofKind("volume")].map((actor) => actor.id), ["volume/b"]);
  assert.equal([...table.values()].length, 2);
});
