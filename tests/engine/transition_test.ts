import assert from "node:assert/strict";
import { initialTransition, transition } from "xstate";
import { volumeMachine } from "../../machines/volume_machine.ts";
import { step } from "../../src/engine/_transition.ts";
import { emittedIntents } from "../../src/engine/engine.ts";

/** A small deterministic generator, so a failure names a seed that reproduces it. */
function random(seed: number) {
  return () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

function volumeEvent(next: () => number, at: number) {
  const ids = ["a", "b", "c"];
  const id = ids[Math.floor(next() * ids.length)]!;
  const events = [
    { type: "volume.create", opts: { mode: "0700" }, at },
    { type: "volume.mount", mountId: id, at },
    { type: "volume.unmount", mountId: id, at },
    { type: "volume.remove", at },
    { type: "volume.vanished", reason: "gone", at },
    { type: "volume.reappeared", at },
    { type: "effect.succeeded", mountpoint: "/m", at },
    { type: "effect.failed", reason: "no", at },
  ];
  return events[Math.floor(next() * events.length)]!;
}

Deno.test("step gives what xstate's transition gives, on 200 random walks of the volume machine", () => {
  for (let seed = 1; seed <= 200; seed++) {
    const next = random(seed);
    let [ours] = initialTransition(volumeMachine, { name: "db" });
    let theirs = ours;
    for (let at = 1; at <= 40 && ours.status !== "done"; at++) {
      const event = volumeEvent(next, at) as never;
      const [ourNext, ourActions] = step(volumeMachine, ours, event);
      const [theirNext, theirActions] = transition(volumeMachine, theirs, event);
      const where = `seed ${seed}, event ${at}`;
      assert.equal(ourNext.value, theirNext.value, where);
      assert.deepEqual(ourNext.context, theirNext.context, where);
      assert.equal(ourNext.status, theirNext.status, where);
      assert.equal(ourNext === ours, theirNext === theirs, `${where}: refusal agrees`);
      assert.deepEqual(emittedIntents(ourActions), emittedIntents(theirActions), where);
      ours = ourNext;
      theirs = theirNext;
    }
  }
});

Deno.test("step collects each call's actions apart", () => {
  const [start] = initialTransition(volumeMachine, { name: "db" });
  const [, first] = step(volumeMachine, start, { type: "volume.create", opts: {}, at: 1 } as never);
  const [, second] = step(
    volumeMachine,
    start,
    { type: "volume.mount", mountId: "a", at: 2 } as never,
  );
  assert.equal(first.length, 1);
  assert.deepEqual(second, []);
});
