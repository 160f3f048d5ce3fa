import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { inBatches } from "../../src/engine/_in_batches.ts";

Deno.test("inBatches runs every item once, never more than the limit at a time", async () => {
  let running = 0;
  let most = 0;
  const done: number[] = [];
  await inBatches([...Array(50).keys()], 4, async (item) => {
    running++;
    most = Math.max(most, running);
    await sleep(item % 3);
    done.push(item);
    running--;
  });
  assert.equal(most, 4);
  assert.deepEqual(done.sort((a, b) => a - b), [...Array(50).keys()]);
  await inBatches([], 4, () => Promise.reject(new Error("never called")));
});
