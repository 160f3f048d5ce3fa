import assert from "node:assert/strict";
import { createEngine } from "../../src/engine/engine.ts";
import { IllegalStateError, NotFoundError } from "../../src/engine/errors.ts";
import { createVolumeEffects } from "../../src/engine/volume_effects.ts";
import { createVolumeService } from "../../src/engine/volume_service.ts";
import { createMemoryStore } from "../../src/log/memory_store.ts";
import type { EventStore } from "../../src/log/store.ts";
import { createRecordingBackend } from "../helpers/recording_backend.ts";

function setup() {
  const store = createMemoryStore();
  const engine = createEngine({
    store,
    effects: { volume: createVolumeEffects(createRecordingBackend().backend) },
    clock: () => 1_700_000_000_000,
  });
  return { store, volumes: createVolumeService(engine) };
}

Deno.test("volume service: create, mount, path, get, list, unmount, remove as Docker sees them", async () => {
  const { volumes } = setup();
  await volumes.create("web", {});
  await volumes.create("db", { mode: "0700" });
  await volumes.create("db", { mode: "0700" }); // dockerd asks again: nothing changes
  assert.equal(await volumes.path("db"), "", "no mountpoint while unmounted");
  assert.equal(await volumes.mount("db", "c1"), "/fake/db/_data");
  await volumes.mount("db", "c2");
  assert.equal(await volumes.path("db"), "/fake/db/_data");
  assert.deepEqual(await volumes.get("db"), {
    name: "db",
    mountpoint: "/fake/db/_data",
    createdAt: 1_700_000_000_000,
    state: "mounted",
    mounts: 2,
    problem: null,
  });
  assert.deepEqual((await volumes.list()).map((volume) => `${volume.name} ${volume.state}`), [
    "db mounted",
    "web unmounted",
  ]);
  await assert.rejects(() => volumes.remove("db"), IllegalStateError);
  await volumes.unmount("db", "c1");
  await volumes.unmount("db", "c2");
  await volumes.remove("db");
  await assert.rejects(() => volumes.get("db"), NotFoundError);
  assert.deepEqual((await volumes.list()).map((volume) => volume.name), ["web"]);
});

Deno.test("volume service: List answers only once what it shows is on disk", async () => {
  const store = createMemoryStore();
  let disk = Promise.withResolvers<void>();
  disk.resolve();
  let pending: Promise<unknown> = Promise.resolve();
  // A store whose writes wait for `disk`: the engine moves on at once, the disk does not.
  const slow: EventStore = {
    ...store,
    get lastSeq() {
      return store.lastSeq;
    },
    append(entry) {
      const gate = disk.promise;
      const written = store.append(entry).then(async (record) => (await gate, record));
      pending = written;
      return written;
    },
    flush: () => pending.then(() => {}),
  };
  const engine = createEngine({
    store: slow,
    effects: { volume: createVolumeEffects(createRecordingBackend().backend) },
  });
  const volumes = createVolumeService(engine);
  await volumes.create("web", {});
  disk = Promise.withResolvers<void>();
  const mounted = volumes.mount("web", "c1");
  while (store.all.length < 3) await new Promise((resolve) => setTimeout(resolve, 1));
  // The engine's snapshot already says mounting; the disk does not know it yet.
  let listed: string[] | null = null;
  const listing = volumes.list().then((list) =>
    listed = list.map((volume) => `${volume.name} ${volume.state}`)
  );
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(listed, null, "no answer while the mount is not on disk");
  disk.resolve();
  await Promise.all([mounted, listing]);
  assert.deepEqual(listed, ["web mounting"]);
});
