import assert from "node:assert/strict";
import {
  volumeIsNoop,
  volumeMachine,
  volumeRefusal,
  type VolumeSnapshot,
} from "../../machines/volume_machine.ts";
import { given } from "../helpers/given.ts";

const input = { name: "db" };
const MP = "/state/volumes/db/_data";
const create = (at = 1, opts: Record<string, string> = {}) => ({
  type: "volume.create" as const,
  opts,
  at,
});
const mount = (mountId: string, at = 2) => ({ type: "volume.mount" as const, mountId, at });
const unmount = (mountId: string, at = 3) => ({ type: "volume.unmount" as const, mountId, at });
const remove = (at = 4) => ({ type: "volume.remove" as const, at });
const ok = (at = 5, mountpoint?: string) => ({
  type: "effect.succeeded" as const,
  ...(mountpoint === undefined ? {} : { mountpoint }),
  at,
});
const failed = (reason = "disk on fire", at = 6) => ({
  type: "effect.failed" as const,
  reason,
  at,
});
const vanished = (at = 7) => ({ type: "volume.vanished" as const, reason: "gone", at });
const reappeared = (at = 8) => ({ type: "volume.reappeared" as const, at });

const CREATED = [create(), ok(2, MP)];
const MOUNTED_A = [...CREATED, mount("a"), ok()];

Deno.test("volumeMachine in absent", async (t) => {
  await t.step("accepts volume.create: creating, asks for the directory", () => {
    given(volumeMachine, input, []).when(create(10, { mode: "0750" })).then({
      state: "creating",
      intents: [{ type: "intent.create", volume: "db", opts: { mode: "0750" } }],
      context: { createdAt: 10, opts: { mode: "0750" } },
    });
  });
  for (const event of [mount("a"), unmount("a"), remove(), ok(), failed(), vanished()]) {
    await t.step(`refuses ${event.type}`, () => {
      given(volumeMachine, input, []).when(event).thenRefused();
    });
  }
});

Deno.test("volumeMachine in creating", async (t) => {
  await t.step("effect.succeeded: unmounted, with the backend's mountpoint", () => {
    given(volumeMachine, input, [create()]).when(ok(2, MP)).then({
      state: "unmounted",
      context: { mountpoint: MP, mounts: {} },
    });
  });
  await t.step("effect.failed: gone (final), the reason kept", () => {
    const next = given(volumeMachine, input, [create()]).when(failed("no space")).then({
      state: "gone",
      context: { problem: "no space" },
    });
    assert.equal(next.status, "done");
  });
  for (const event of [create(), mount("a"), unmount("a"), remove(), vanished()]) {
    await t.step(`refuses ${event.type} while the directory is being made`, () => {
      given(volumeMachine, input, [create()]).when(event).thenRefused();
    });
  }
});

Deno.test("volumeMachine in unmounted", async (t) => {
  await t.step("volume.mount: mounting, the ID pending, asks for a mount", () => {
    given(volumeMachine, input, CREATED).when(mount("a")).then({
      state: "mounting",
      intents: [{ type: "intent.mount", volume: "db", mountId: "a" }],
      context: { pending: "a", mounts: {} },
    });
  });
  await t.step("volume.remove: removing, asks for removal", () => {
    given(volumeMachine, input, CREATED).when(remove()).then({
      state: "removing",
      intents: [{ type: "intent.remove", volume: "db" }],
    });
  });
  await t.step("volume.vanished: missing, the reason kept", () => {
    given(volumeMachine, input, CREATED).when(vanished()).then({
      state: "missing",
      context: { problem: "gone" },
    });
  });
  for (const event of [unmount("a"), ok(), failed(), reappeared(), create()]) {
    await t.step(`refuses ${event.type}`, () => {
      given(volumeMachine, input, CREATED).when(event).thenRefused();
    });
  }
});

Deno.test("volumeMachine in mounting", async (t) => {
  const mounting = [...CREATED, mount("a")];
  await t.step("effect.succeeded: mounted, the pending ID now holds it once", () => {
    given(volumeMachine, input, mounting).when(ok()).then({
      state: "mounted",
      context: { mounts: { a: 1 }, pending: null, mountpoint: MP },
    });
  });
  await t.step("effect.failed: unmounted, nothing held", () => {
    given(volumeMachine, input, mounting).when(failed()).then({
      state: "unmounted",
      context: { mounts: {}, pending: null },
    });
  });
  for (const event of [mount("b"), unmount("a"), remove(), vanished()]) {
    await t.step(`refuses ${event.type} while the mount is in flight`, () => {
      given(volumeMachine, input, mounting).when(event).thenRefused();
    });
  }
});

Deno.test("volumeMachine in mounted", async (t) => {
  await t.step("volume.mount of the same ID counts it twice, no effect", () => {
    given(volumeMachine, input, MOUNTED_A).when(mount("a")).then({
      state: "mounted",
      context: { mounts: { a: 2 } },
    });
  });
  await t.step("volume.mount of another ID adds a holder, no effect", () => {
    given(volumeMachine, input, MOUNTED_A).when(mount("b")).then({
      state: "mounted",
      context: { mounts: { a: 1, b: 1 } },
    });
  });
  await t.step("volume.unmount of one of several holders drops it, no effect", () => {
    given(volumeMachine, input, [...MOUNTED_A, mount("b")]).when(unmount("a")).then({
      state: "mounted",
      context: { mounts: { b: 1 } },
    });
  });
  await t.step("volume.unmount of a twice-counted ID decrements it", () => {
    given(volumeMachine, input, [...MOUNTED_A, mount("a")]).when(unmount("a")).then({
      state: "mounted",
      context: { mounts: { a: 1 } },
    });
  });
  await t.step("volume.unmount of the last holder: unmounting, asks for an unmount", () => {
    given(volumeMachine, input, MOUNTED_A).when(unmount("a")).then({
      state: "unmounting",
      intents: [{ type: "intent.unmount", volume: "db", mountId: "a" }],
      context: { pending: "a", mounts: { a: 1 } },
    });
  });
  await t.step("volume.vanished: missing, holders kept so their Unmounts still work", () => {
    given(volumeMachine, input, MOUNTED_A).when(vanished()).then({
      state: "missing",
      context: { mounts: { a: 1 } },
    });
  });
  await t.step("refuses volume.unmount of an ID that does not hold it", () => {
    const snapshot = given(volumeMachine, input, MOUNTED_A).when(unmount("zz")).thenRefused();
    assert.equal(
      volumeRefusal(snapshot as VolumeSnapshot, unmount("zz")),
      'Cannot unmount volume "db": mount ID "zz" does not hold it',
    );
  });
  await t.step("refuses volume.remove, saying how many mounts hold it", () => {
    const snapshot = given(volumeMachine, input, [...MOUNTED_A, mount("a"), mount("b")])
      .when(remove()).thenRefused();
    assert.equal(
      volumeRefusal(snapshot as VolumeSnapshot, remove()),
      'Cannot remove volume "db": in use by 3 mounts',
    );
  });
  await t.step("on a shared log, the refused volume.remove names the nodes that hold it", () => {
    const held = [...CREATED, mount("b/x"), ok(), mount("a/y"), mount("b/z")];
    const snapshot = given(volumeMachine, input, held).when(remove()).thenRefused();
    assert.equal(
      volumeRefusal(snapshot as VolumeSnapshot, remove()),
      'Cannot remove volume "db": in use by 3 mounts on nodes "a", "b"',
    );
  });
  for (const event of [ok(), failed(), reappeared()]) {
    await t.step(`refuses ${event.type}`, () => {
      given(volumeMachine, input, MOUNTED_A).when(event).thenRefused();
    });
  }
});

Deno.test("volumeMachine in unmounting", async (t) => {
  const unmounting = [...MOUNTED_A, unmount("a")];
  await t.step("effect.succeeded: unmounted, the holder gone", () => {
    given(volumeMachine, input, unmounting).when(ok()).then({
      state: "unmounted",
      context: { mounts: {}, pending: null },
    });
  });
  await t.step("effect.failed: mounted, the holder kept", () => {
    given(volumeMachine, input, unmounting).when(failed()).then({
      state: "mounted",
      context: { mounts: { a: 1 }, pending: null },
    });
  });
  for (const event of [mount("b"), unmount("a"), remove()]) {
    await t.step(`refuses ${event.type} while the unmount is in flight`, () => {
      given(volumeMachine, input, unmounting).when(event).thenRefused();
    });
  }
});

Deno.test("volumeMachine in removing", async (t) => {
  await t.step("effect.succeeded: gone (final)", () => {
    const next = given(volumeMachine, input, [...CREATED, remove()]).when(ok()).then({
      state: "gone",
    });
    assert.equal(next.status, "done");
  });
  await t.step("effect.failed: back to unmounted", () => {
    given(volumeMachine, input, [...CREATED, remove()]).when(failed()).then({
      state: "unmounted",
    });
  });
  await t.step("effect.failed after a vanished directory: back to missing", () => {
    given(volumeMachine, input, [...CREATED, vanished(), remove()]).when(failed()).then({
      state: "missing",
    });
  });
  for (const event of [mount("a"), remove(), create()]) {
    await t.step(`refuses ${event.type} while removal is in flight`, () => {
      given(volumeMachine, input, [...CREATED, remove()]).when(event).thenRefused();
    });
  }
});

Deno.test("volumeMachine in missing", async (t) => {
  const missing = [...CREATED, vanished()];
  const missingHeld = [...MOUNTED_A, vanished()];
  await t.step("volume.unmount of a holder drops it", () => {
    given(volumeMachine, input, missingHeld).when(unmount("a")).then({
      state: "missing",
      context: { mounts: {} },
    });
  });
  await t.step("volume.remove without holders: removing", () => {
    given(volumeMachine, input, missing).when(remove()).then({
      state: "removing",
      intents: [{ type: "intent.remove", volume: "db" }],
    });
  });
  await t.step("volume.reappeared without holders: unmounted, problem cleared", () => {
    given(volumeMachine, input, missing).when(reappeared()).then({
      state: "unmounted",
      context: { problem: null },
    });
  });
  await t.step("volume.reappeared with holders: mounted", () => {
    given(volumeMachine, input, missingHeld).when(reappeared()).then({ state: "mounted" });
  });
  await t.step("refuses volume.mount, naming the vanished directory", () => {
    const snapshot = given(volumeMachine, input, missing).when(mount("b")).thenRefused();
    assert.equal(
      volumeRefusal(snapshot as VolumeSnapshot, mount("b")),
      'Cannot mount volume "db": its directory vanished (gone)',
    );
  });
  await t.step("refuses volume.remove while held", () => {
    given(volumeMachine, input, missingHeld).when(remove()).thenRefused();
  });
  for (const event of [create(), unmount("zz"), ok(), failed()]) {
    await t.step(`refuses ${event.type}`, () => {
      given(volumeMachine, input, missing).when(event).thenRefused();
    });
  }
});

Deno.test("volumeMachine in gone refuses everything", () => {
  const { snapshot } = given(volumeMachine, input, [create(), failed()]);
  for (const event of [create(), mount("a"), remove(), ok(), vanished()]) {
    assert.equal(snapshot.can(event), false, event.type);
  }
});

Deno.test("volumeIsNoop: create of an existing volume changes nothing", () => {
  const cases: [unknown[], boolean][] = [
    [[], false],
    [CREATED, true],
    [MOUNTED_A, true],
    [[...CREATED, vanished()], false],
  ];
  for (const [events, expected] of cases) {
    const { snapshot } = given(volumeMachine, input, events as never);
    assert.equal(volumeIsNoop(snapshot as VolumeSnapshot, create()), expected);
  }
  const { snapshot } = given(volumeMachine, input, CREATED);
  assert.equal(volumeIsNoop(snapshot as VolumeSnapshot, mount("a")), false);
});

Deno.test("volumeMachine counts mount IDs named like Object.prototype's members", async (t) => {
  for (const id of ["toString", "__proto__", "constructor", "hasOwnProperty", "valueOf"]) {
    await t.step(id, () => {
      // First mount (through mounting) and a second one while mounted: both counted under `id`.
      const held = given(volumeMachine, input, [...MOUNTED_A, mount(id), unmount("a")]);
      held.when(mount(id)).then({ state: "mounted", intents: [] });
      const snapshot = held.snapshot as VolumeSnapshot;
      assert.equal(snapshot.context.mounts.get(id), 1, id);
      assert.deepEqual([...snapshot.context.mounts.keys()], [id]);
      assert.equal(snapshot.context.held, 1);
      // The last holder's unmount is the last one, and goes through unmounting.
      held.when(unmount(id)).then({
        state: "unmounting",
        intents: [{ type: "intent.unmount", volume: "db", mountId: id }],
      });
      given(volumeMachine, input, CREATED).when(unmount(id)).thenRefused();
    });
  }
});
