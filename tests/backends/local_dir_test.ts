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
