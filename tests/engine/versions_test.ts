// An actor's version on a shared log: the sequence number of its last record, 0 once dropped, and
// waiting to have seen past a conflict, a drop included.
import assert from "node:assert/strict";
import { createActorVersions } from "../../src/engine/_versions.ts";

const settled = async (promise: Promise<void>) => {
  let done = false;
  promise.then(() => done = true);
  await new Promise((resolve) => setTimeout(resolve, 0));
  return done;
};

Deno.test("a version is the last record's sequence number, from the store's at open", () => {
  const open = new Map([["pool/a", 7]]);
  const versions = createActorVersions((id) => open.get(id) ?? 0);
  assert.equal(versions.of("pool/a"), 7);
  assert.equal(versions.of("pool/b"), 0);
  versions.applied("pool/a", 12);
  assert.equal(versions.of("pool/a"), 12);
  open.delete("pool/a"); // the store forgets it when the drop comes
  versions.dropped("pool/a", 15);
  assert.equal(versions.of("pool/a"), 0);
});

Deno.test("whenPast waits for the record that beat an append, not one before it", async () => {
  const versions = createActorVersions(() => 0);
  versions.applied("pool/a", 5);
  const waiting = versions.whenPast("pool/a", 5, 9);
  versions.applied("pool/a", 8);
  assert.equal(await settled(waiting), false);
  versions.applied("pool/a", 9);
  assert.equal(await settled(waiting), true);
  assert.equal(await settled(versions.whenPast("pool/a", 5, 9)), true, "seen already");
});

Deno.test("whenPast of a dropped actor waits for the drop, then is past it", async () => {
  const versions = createActorVersions(() => 0);
  versions.applied("pool/a", 5);
  // The log holds no head: another node dropped it after 5.
  const waiting = versions.whenPast("pool/a", 5, 0);
  assert.equal(await settled(waiting), false);
  versions.dropped("pool/a", 6);
  assert.equal(await settled(waiting), true);
  // Dropped and made again before this node asks: past 5 all the same.
  versions.applied("pool/a", 10);
  assert.equal(await settled(versions.whenPast("pool/a", 5, 0)), true);
});

Deno.test("whenPast is past a version the actor went beyond and was then dropped", async () => {
  const versions = createActorVersions(() => 0);
  versions.applied("pool/a", 5);
  versions.applied("pool/a", 9);
  versions.dropped("pool/a", 11);
  // The conflict said 9, but by the time it is waited on the actor is already gone.
  assert.equal(await settled(versions.whenPast("pool/a", 5, 9)), true);
});
