// Every VolumeDriver route through a real unix socket, good input and bad.
import assert from "node:assert/strict";
import { join } from "node:path";
import { startInProcess } from "../../helpers/plugin_socket.ts";
import { tempDir } from "../../helpers/temp_dir.ts";

const CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json";

async function listDir(path: string): Promise<string[]> {
  const names = [];
  try {
    for await (const entry of Deno.readDir(path)) names.push(entry.name);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return names.sort();
}

async function logLines(stateDir: string): Promise<number> {
  let count = 0;
  for (const name of await listDir(join(stateDir, "log"))) {
    count += (await Deno.readTextFile(join(stateDir, "log", name))).split("\n").length - 1;
  }
  return count;
}

Deno.test("plugin socket answers every VolumeDriver call as the protocol says", async (t) => {
  await using dir = await tempDir();
  await using berth = await startInProcess(dir.path);
  const { call } = berth;
  const mountpoint = join(berth.stateDir, "volumes", "v1", "_data");

  await t.step("Plugin.Activate with an empty body lists the drivers Berth serves", async () => {
    const reply = await call("Plugin.Activate");
    assert.equal(reply.status, 200);
    assert.equal(reply.contentType, CONTENT_TYPE);
    assert.deepEqual(reply.body, { Implements: ["VolumeDriver", "NetworkDriver", "IpamDriver"] });
  });
  await t.step("Capabilities answers local scope, nested, for {} or nothing", async () => {
    for (const body of [{}, undefined]) {
      const reply = await call("VolumeDriver.Capabilities", body);
      assert.deepEqual(reply.body, { Capabilities: { Scope: "local" } });
    }
  });
  await t.step("Create with Opts null, absent or given answers {}", async () => {
    for (
      const body of [{ Name: "v1", Opts: null }, { Name: "v2" }, {
        Name: "v3",
        Opts: { mode: "0700" },
      }]
    ) {
      const reply = await call("VolumeDriver.Create", body);
      assert.equal(reply.status, 200, reply.text);
      assert.deepEqual(reply.body, {});
    }
  });
  await t.step("Create of an existing name is idempotent", async () => {
    const reply = await call("VolumeDriver.Create", { Name: "v1", Opts: null });
    assert.deepEqual(reply.body, {});
  });
  await t.step("Get describes the volume with an RFC 3339 CreatedAt", async () => {
    const reply = await call("VolumeDriver.Get", { Name: "v1" });
    const volume = (reply.body as { Volume: Record<string, unknown> }).Volume;
    assert.equal(volume.Name, "v1");
    assert.equal(volume.Mountpoint, mountpoint);
    assert.equal(new Date(String(volume.CreatedAt)).toISOString(), volume.CreatedAt);
    assert.deepEqual(volume.Status, { state: "unmounted", mounts: 0 });
  });
  await t.step("Path is empty while nothing holds the volume", async () => {
    const reply = await call("VolumeDriver.Path", { Name: "v1" });
    assert.deepEqual(reply.body, { Mountpoint: "" });
  });
  await t.step("Mount returns an existing directory; the same ID may mount twice", async () => {
    for (const id of ["a", "a", "b"]) {
      const reply = await call("VolumeDriver.Mount", { Name: "v1", ID: id });
      assert.deepEqual(reply.body, { Mountpoint: mountpoint });
    }
    assert.ok((await Deno.stat(mountpoint)).isDirectory);
    const path = await call("VolumeDriver.Path", { Name: "v1" });
    assert.deepEqual(path.body, { Mountpoint: mountpoint });
  });
  await t.step(
    "Remove of a mounted volume is refused, naming how many mounts hold it",
    async () => {
      const reply = await call("VolumeDriver.Remove", { Name: "v1" });
      assert.equal(reply.status, 500);
      assert.deepEqual(reply.body, { Err: 'Cannot remove volume "v1": in use by 3 mounts' });
    },
  );
  await t.step(
    "Unmount of an ID that does not hold the volume is an error and changes nothing",
    async () => {
      const before = await logLines(berth.stateDir);
      const reply = await call("VolumeDriver.Unmount", { Name: "v1", ID: "zz" });
      assert.equal(reply.status, 500);
      assert.deepEqual(reply.body, {
        Err: 'Cannot unmount volume "v1": mount ID "zz" does not hold it',
      });
      assert.equal(await logLines(berth.stateDir), before);
      const get = await call("VolumeDriver.Get", { Name: "v1" });
      assert.equal(
        (get.body as { Volume: { Status: { mounts: number } } }).Volume.Status.mounts,
        3,
      );
    },
  );
  await t.step("Unmount counts down per ID; the volume ends unmounted", async () => {
    for (const id of ["a", "b", "a"]) {
      const reply = await call("VolumeDriver.Unmount", { Name: "v1", ID: id });
      assert.deepEqual(reply.body, {}, reply.text);
    }
    const get = await call("VolumeDriver.Get", { Name: "v1" });
    assert.deepEqual((get.body as { Volume: { Status: unknown } }).Volume.Status, {
      state: "unmounted",
      mounts: 0,
    });
  });
  await t.step("List shows every volume, sorted by name", async () => {
    const reply = await call("VolumeDriver.List", {});
    const volumes = (reply.body as { Volumes: { Name: string }[] }).Volumes;
    assert.deepEqual(volumes.map((volume) => volume.Name), ["v1", "v2", "v3"]);
  });
  await t.step("Remove deletes the volume and its directory", async () => {
    const reply = await call("VolumeDriver.Remove", { Name: "v1" });
    assert.deepEqual(reply.body, {});
    await assert.rejects(() => Deno.stat(join(berth.stateDir, "volumes", "v1")));
    const get = await call("VolumeDriver.Get", { Name: "v1" });
    assert.equal(get.status, 500);
    assert.deepEqual(get.body, { Err: 'Volume "v1" not found' });
  });
  await t.step("every call on an unknown volume is a clear error", async () => {
    for (const method of ["Get", "Path", "Remove", "Mount", "Unmount"]) {
      const reply = await call(`VolumeDriver.${method}`, { Name: "nope", ID: "a" });
      assert.equal(reply.status, 500, method);
      assert.deepEqual(reply.body, { Err: 'Volume "nope" not found' }, method);
    }
  });
  assert.deepEqual(berth.problems(), []);
});

Deno.test("plugin socket refuses bad input with 400 and leaves nothing behind", async (t) => {
  await using dir = await tempDir();
  await using berth = await startInProcess(dir.path);
  const cases: [string, unknown, RegExp][] = [
    ["VolumeDriver.Create", "{not json", /body is not JSON/],
    ["VolumeDriver.Create", "[1,2]", /Invalid VolumeDriver.Create request/],
    ["VolumeDriver.Create", {}, /Name: Name must be a string/],
    ["VolumeDriver.Create", { Name: 7 }, /Name must be a string/],
    ["VolumeDriver.Create", { Name: "" }, /Name must match/],
    ["VolumeDriver.Create", { Name: "x" }, /Name must match/],
    ["VolumeDriver.Create", { Name: ".." }, /Name must match/],
    ["VolumeDriver.Create", { Name: "../etc" }, /Name must match/],
    ["VolumeDriver.Create", { Name: "a/b" }, /Name must match/],
    ["VolumeDriver.Create", { Name: "/abs" }, /Name must match/],
    ["VolumeDriver.Create", { Name: "a".repeat(256) }, /at most 255 characters/],
    ["VolumeDriver.Create", { Name: "ok1", Opts: { mode: 7 } }, /Opts.mode/],
    ["VolumeDriver.Create", { Name: "ok1", Opts: { size: "1G" } }, /unknown option "size"/],
    ["VolumeDriver.Create", { Name: "ok1", Opts: { mode: "999" } }, /option "mode" must be octal/],
    ["VolumeDriver.Mount", { Name: "ok1" }, /ID: ID must be a string/],
    ["VolumeDriver.Mount", { Name: "ok1", ID: "" }, /ID must not be empty/],
    ["VolumeDriver.Unmount", {}, /Name/],
    ["VolumeDriver.Get", undefined, /Name must be a string/],
    ["VolumeDriver.Path", "null", /Invalid VolumeDriver.Path request/],
    ["VolumeDriver.Remove", { Name: "../../x" }, /Name must match/],
  ];
  for (const [method, body, message] of cases) {
    await t.step(
      `${method} ${typeof body === "string" ? body : JSON.stringify(body)}`,
      async () => {
        const reply = await berth.call(method, body);
        assert.equal(reply.status, 400, reply.text);
        assert.equal(reply.contentType, CONTENT_TYPE);
        assert.match(String((reply.body as { Err: string }).Err), message);
      },
    );
  }
  await t.step("nothing was logged or made on disk", async () => {
    assert.equal(await logLines(berth.stateDir), 0);
    assert.deepEqual(await listDir(join(berth.stateDir, "volumes")), []);
  });
});

Deno.test("plugin socket answers unknown paths with a JSON 404", async () => {
  await using dir = await tempDir();
  await using berth = await startInProcess(dir.path);
  for (const method of ["VolumeDriver.Frobnicate", "NetworkDriver.Frobnicate", "", "x/y"]) {
    const reply = await berth.call(method, {});
    assert.equal(reply.status, 404, method);
    assert.equal(reply.contentType, CONTENT_TYPE);
    assert.match(String((reply.body as { Err: string }).Err), /^Unknown method POST \//);
  }
});

Deno.test("plugin socket counts 50 parallel Mounts and 50 Unmounts of one volume exactly", async () => {
  await using dir = await tempDir();
  await using berth = await startInProcess(dir.path);
  const status = async () => {
    const reply = await berth.call("VolumeDriver.Get", { Name: "shared" });
    return (reply.body as { Volume: { Status: { state: string; mounts: number } } }).Volume.Status;
  };
  await berth.call("VolumeDriver.Create", { Name: "shared" });
  const ids = Array.from({ length: 50 }, (_, n) => `${n}`.padStart(64, "0"));
  const mounts = await Promise.all(
    ids.map((ID) => berth.call("VolumeDriver.Mount", { Name: "shared", ID })),
  );
  assert.deepEqual(mounts.map((reply) => reply.status), ids.map(() => 200));
  assert.deepEqual(await status(), { state: "mounted", mounts: 50 });
  const unmounts = await Promise.all(
    ids.map((ID) => berth.call("VolumeDriver.Unmount", { Name: "shared", ID })),
  );
  assert.deepEqual(unmounts.map((reply) => reply.status), ids.map(() => 200));
  assert.deepEqual(await status(), { state: "unmounted", mounts: 0 });
  // The log holds one line per step; folding it gives the count after each one, 1..50..0.
  const log = await Deno.readTextFile(join(berth.stateDir, "log", "00000000000000000001.log"));
  let count = 0;
  const counts: number[] = [];
  for (const line of log.trim().split("\n").map((text) => JSON.parse(text))) {
    if (line.type === "volume.mount") counts.push(++count);
    if (line.type === "volume.unmount") counts.push(--count);
  }
  assert.deepEqual(counts, [...ids.map((_, n) => n + 1), ...ids.map((_, n) => 49 - n)]);
});
