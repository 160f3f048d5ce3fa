import assert from "node:assert/strict";
import { join } from "node:path";
import { createLocalDirBackend } from "../../src/backends/local_dir.ts";
import { BackendError, BackendOptionsError } from "../../src/backends/volume_backend.ts";
import { rootMissing, skipUnless } from "../helpers/skip.ts";
import { tempDir } from "../helpers/temp_dir.ts";

Deno.test("localDir checkOptions accepts uid, gid, mode and names anything else", () => {
  const backend = createLocalDirBackend("/nonexistent");
  backend.checkOptions({});
  backend.checkOptions({ uid: "1000", gid: "0", mode: "0750" });
  backend.checkOptions({ mode: "755" });
  const refusals: [Record<string, string>, RegExp][] = [
    [{ size: "1G" }, /unknown option "size" \(known: uid, gid, mode\)/],
    [{ size: "1G", type: "tmpfs" }, /unknown options "size", "type"/],
    [{ uid: "root" }, /option "uid" must be a number/],
    [{ mode: "0999" }, /option "mode" must be octal/],
    [{ mode: "rwx" }, /option "mode" must be octal/],
  ];
  for (const [opts, message] of refusals) {
    assert.throws(() => backend.checkOptions(opts), BackendOptionsError);
    assert.throws(() => backend.checkOptions(opts), message);
  }
});

const CREATE = "localDir create makes <root>/<name>/_data with the options applied (chown: root)";
Deno.test({ name: CREATE, ignore: skipUnless(CREATE, rootMissing()) }, async () => {
  await using dir = await tempDir();
  const backend = createLocalDirBackend(join(dir.path, "volumes"));
  const { mountpoint } = await backend.create("v1", { uid: "1234", gid: "4321", mode: "0750" });
  assert.equal(mountpoint, join(dir.path, "volumes", "v1", "_data"));
  const info = await Deno.stat(mountpoint);
  assert.ok(info.isDirectory);
  assert.equal(info.mode! & 0o7777, 0o750);
  assert.equal(info.uid, 1234);
  assert.equal(info.gid, 4321);
  const plain = await Deno.stat((await backend.create("v2", {})).mountpoint);
  assert.equal(plain.mode! & 0o7777, 0o755, "default mode is 0755 whatever the umask");
  assert.deepEqual((await backend.survey()).inspect("v1"), { present: true, mountpoint });
});

Deno.test("localDir create is idempotent and keeps the data", async () => {
  await using dir = await tempDir();
  const backend = createLocalDirBackend(dir.path);
  const { mountpoint } = await backend.create("v1", {});
  await Deno.writeTextFile(join(mountpoint, "f"), "hi");
  await backend.create("v1", {});
  assert.equal(await Deno.readTextFile(join(mountpoint, "f")), "hi");
});

Deno.test("localDir mount returns the data directory, or fails when it is gone", async () => {
  await using dir = await tempDir();
  const backend = createLocalDirBackend(dir.path);
  const { mountpoint } = await backend.create("v1", {});
  assert.deepEqual(await backend.mount("v1"), { mountpoint });
  await backend.unmount("v1");
  await Deno.remove(join(dir.path, "v1"), { recursive: true });
  await assert.rejects(() => backend.mount("v1"), BackendError);
  assert.equal(((await backend.survey()).inspect("v1")).present, false);
});

Deno.test("localDir remove deletes the volume with its data and is idempotent", async () => {
  await using dir = await tempDir();
  const backend = createLocalDirBackend(dir.path);
  const { mountpoint } = await backend.create("v1", {});
  await Deno.mkdir(join(mountpoint, "deep", "er"), { recursive: true });
  await backend.remove("v1");
  await assert.rejects(() => Deno.stat(join(dir.path, "v1")), Deno.errors.NotFound);
  await backend.remove("v1");
  const left = [];
  for await (const entry of Deno.readDir(join(dir.path, ".staging"))) left.push(entry.name);
  assert.deepEqual(left, [], "nothing left in staging");
});

Deno.test("localDir clears staging leftovers of a crash on first use", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(join(dir.path, ".staging", "v1.half-made", "_data"), { recursive: true });
  const backend = createLocalDirBackend(dir.path);
  await backend.create("v2", {});
  const left = [];
  for await (const entry of Deno.readDir(join(dir.path, ".staging"))) left.push(entry.name);
  assert.deepEqual(left, []);
});

Deno.test("localDir survey lists the root once and answers for every volume from that look", async () => {
  await using dir = await tempDir();
  const backend = createLocalDirBackend(join(dir.path, "volumes"));
  assert.equal((await backend.survey()).inspect("v1").present, false, "no root yet: nothing");
  await backend.create("v1", {});
  await backend.create("v2", {});
  await backend.remove("v2"); // leaves .staging behind, which is no volume
  const survey = await backend.survey();
  await backend.create("v3", {});
  assert.deepEqual(survey.inspect("v1"), {
    present: true,
    mountpoint: join(dir.path, "volumes", "v1", "_data"),
  });
  assert.equal(survey.inspect("v2").present, false);
  assert.equal(survey.inspect(".staging").present, false);
  assert.equal(survey.inspect("v3").present, false, "what it saw, not what came after");
  assert.equal((await backend.survey()).inspect("v3").present, true);
});

Deno.test("localDir refuses uid and gid past 2^32 - 2 instead of wrapping them to root", () => {
  const backend = createLocalDirBackend("/nonexistent");
  for (const value of ["4294967296", "4294967295", "9999999999", "18446744073709551616"]) {
    for (const key of ["uid", "gid"]) {
      assert.throws(() => backend.checkOptions({ [key]: value }), BackendOptionsError, value);
    }
  }
  backend.checkOptions({ uid: "4294967294", gid: "0" });
});

Deno.test("localDir keeps a volume of every name length to 255 through its whole life", async () => {
  await using dir = await tempDir();
  const backend = createLocalDirBackend(join(dir.path, "volumes"));
  for (const length of [2, 100, 200, 210, 211, 218, 219, 240, 255]) {
    const name = "n".repeat(length);
    const { mountpoint } = await backend.create(name, {});
    assert.equal((await backend.mount(name)).mountpoint, mountpoint);
    await backend.unmount(name);
    await backend.remove(name);
    await assert.rejects(() => Deno.lstat(join(dir.path, "volumes", name)), Deno.errors.NotFound);
  }
});

Deno.test("localDir never follows a symlink in place of its root, a volume or _data", async (t) => {
  await using dir = await tempDir();
  const outside = join(dir.path, "outside");
  await Deno.mkdir(join(outside, "_data"), { recursive: true });
  await Deno.writeTextFile(join(outside, "_data", "secret"), "keep me");
  const root = join(dir.path, "volumes");
  const backend = createLocalDirBackend(root);
  await backend.create("v1", {});

  await t.step(
    "a volume directory replaced by a symlink is not mounted, adopted or emptied",
    async () => {
      await Deno.remove(join(root, "v1"), { recursive: true });
      await Deno.symlink(outside, join(root, "v1"));
      await assert.rejects(() => backend.mount("v1"), /symlink/);
      await assert.rejects(() => backend.create("v1", {}), /symlink/);
      assert.equal((await backend.survey()).inspect("v1").present, false);
      await backend.remove("v1");
      assert.equal(await Deno.readTextFile(join(outside, "_data", "secret")), "keep me");
    },
  );
  await t.step("_data replaced by a symlink is not mounted", async () => {
    await backend.create("v2", {});
    await Deno.remove(join(root, "v2", "_data"));
    await Deno.symlink(join(outside, "_data"), join(root, "v2", "_data"));
    await assert.rejects(() => backend.mount("v2"), /symlink/);
    await backend.remove("v2");
    assert.equal(await Deno.readTextFile(join(outside, "_data", "secret")), "keep me");
  });
  await t.step(
    "a root that is a symlink is refused before anything is made through it",
    async () => {
      const linked = join(dir.path, "linked-root");
      await Deno.symlink(outside, linked);
      const through = createLocalDirBackend(linked);
      await assert.rejects(() => through.create("v3", {}), /symlink/);
      await assert.rejects(() => Deno.lstat(join(outside, "v3")), Deno.errors.NotFound);
      await assert.rejects(() => Deno.lstat(join(outside, ".staging")), Deno.errors.NotFound);
    },
  );
});
