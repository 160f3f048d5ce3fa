import assert from "node:assert/strict";
import { createEngine } from "../../src/engine/engine.ts";
import { createVolumeEffects } from "../../src/engine/volume_effects.ts";
import { createLiveModel, type FeedBatch } from "../../src/inspect/live.ts";
import { createMemoryStore } from "../../src/log/memory_store.ts";
import { createRecordingBackend } from "../helpers/recording_backend.ts";

Deno.test("createLiveModel batches the newest records and every changed actor, in order", async () => {
  const store = createMemoryStore();
  const engine = createEngine({
    store,
    effects: { volume: createVolumeEffects(createRecordingBackend().backend) },
  });
  await engine.dispatch("volume/before", { type: "volume.create", opts: {} });
  const live = createLiveModel(engine, store.lastSeq);
  assert.deepEqual([...live.actors.keys()], ["volume/before"]);
  const batches: FeedBatch[] = [];
  const got = Promise.withResolvers<void>();
  live.subscribe((batch) => {
    batches.push(batch);
    got.resolve();
  });
  try {
    await engine.dispatch("volume/aa", { type: "volume.create", opts: {} });
    for (let i = 0; i < 40; i++) {
      await engine.dispatch("volume/aa", { type: "volume.mount", mountId: `m${i}` });
    }
    await engine.dispatch("volume/before", { type: "volume.remove" });
    await got.promise;
    assert.equal(batches.length, 1, "one batch for the whole burst");
    const [batch] = batches as [FeedBatch];
    const last = store.lastSeq;
    assert.equal(batch.lastSeq, last);
    assert.equal(batch.records.length, 32);
    assert.deepEqual(
      batch.records.map((record) => record.seq),
      [...Array(32)].map((_, i) => last - 31 + i),
    );
    assert.equal(batch.skipped, last - 2 - 32);
    const views = new Map(batch.actors.map((view) => [view.id, view]));
    assert.equal(views.get("volume/aa")!.state, "mounted");
    assert.equal(views.get("volume/before")!.status, "done", "a removed actor is said to be gone");
    assert.deepEqual([...live.actors.keys()], ["volume/aa"]);
  } finally {
    live.close();
  }
});
