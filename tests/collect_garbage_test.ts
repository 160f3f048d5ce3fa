// The full collections Berth runs after its start and after a busy spell: one really runs in this
// runtime, and the idle watcher runs one per spell, only once the spell is over.
import assert from "node:assert/strict";
import { collectGarbage, collectWhenIdle } from "../src/_collect_garbage.ts";

Deno.test("collectGarbage runs a full collection: an object nothing holds is gone after it", async () => {
  let held: { payload: number[] } | null = { payload: Array.from({ length: 1000 }, (_, i) => i) };
  const ref = new WeakRef(held);
  held = null;
  // A WeakRef keeps its target for the rest of the job that made it.
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(collectGarbage(), true);
  assert.equal(ref.deref(), undefined);
});

Deno.test("collectWhenIdle collects once after each busy spell, never while busy or always idle", async () => {
  let seq = 0;
  let collected = 0;
  const tick = () => new Promise((resolve) => setTimeout(resolve, 120));
  const stop = collectWhenIdle(() => seq, { collect: () => collected++, everyMs: 40 });
  try {
    await tick();
    assert.equal(collected, 0, "idle from the start: nothing to give back");
    // Activity far more often than the watcher looks: a spell of about 100 ms.
    for (let i = 0; i < 50; i++) {
      seq++;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await tick();
    assert.equal(collected, 1, "one collection once the spell ended");
    await tick();
    assert.equal(collected, 1, "and no more while idle");
    seq++;
    await tick();
    assert.equal(collected, 2, "the next spell gets its own");
  } finally {
    stop();
  }
});

Deno.test("collectWhenIdle started busy collects at the first lull", async () => {
  let collected = 0;
  const stop = collectWhenIdle(() => 0, { busy: true, collect: () => collected++, everyMs: 20 });
  try {
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(collected, 1);
  } finally {
    stop();
  }
});
