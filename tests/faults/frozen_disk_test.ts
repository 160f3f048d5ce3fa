// Fault: the state dir's filesystem frozen (fsfreeze) under a running Berth, as a stalled disk.
// Calls that need no log entry keep answering; those that do are refused within the log timeout;
// once thawed, Berth goes on.
import assert from "node:assert/strict";
import { join } from "node:path";
import { spawnBerth } from "../helpers/berth_process.ts";
import { waitFor } from "../helpers/_crash.ts";
import { pluginClient } from "../helpers/plugin_socket.ts";
import type { Reply } from "../helpers/plugin_socket.ts";
import { onPath, rootMissing, skipUnless } from "../helpers/skip.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { mountSmall, recordsOnDisk } from "./_fault.ts";

/** The reply, or a failure once `ms` passed without one. */
async function within(ms: number, what: string, reply: Promise<Reply>): Promise<Reply> {
  reply.catch(() => {}); // a reply that never came is rejected once the client closes
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), ms));
  const first = await Promise.race([reply, late]);
  clearTimeout(timer);
  if (first === null) throw new Error(`${what} did not answer within ${ms} ms`);
  return first;
}

async function freeze(path: string, how: "-f" | "-u") {
  const done = await new Deno.Command("fsfreeze", { args: [how, path] }).output();
  assert.ok(done.success, new TextDecoder().decode(done.stderr));
}

const NAME = "a frozen disk leaves Berth answering, refuses changes in time, and passes";
Deno.test({
  name: NAME,
  ignore: skipUnless(
    NAME,
    rootMissing(),
    onPath("fsfreeze") ? null : "needs fsfreeze (util-linux)",
    onPath("mkfs.ext4") ? null : "needs mkfs.ext4 (e2fsprogs)",
  ),
}, async () => {
  await using dir = await tempDir();
  await using disk = await mountSmall({ ext4MiB: 32 });
  const socket = join(dir.path, "b.sock");
  const stateDir = join(disk.path, "s");
  await using berth = spawnBerth(["--socket", socket, "--state-dir", stateDir], {
    BERTH_LOG_TIMEOUT: "1",
  });
  await berth.ready();
  using plugin = pluginClient(socket);
  assert.equal((await plugin.call("VolumeDriver.Create", { Name: "a1" })).status, 200);
  assert.equal((await plugin.call("VolumeDriver.Mount", { Name: "a1", ID: "m1" })).status, 200);
  await freeze(disk.path, "-f");
  try {
    const pending = plugin.call("VolumeDriver.Create", { Name: "b1" });
    pending.catch(() => {}); // awaited below, unless a check before fails
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (
      const [method, body] of [
        ["Plugin.Activate", {}],
        ["VolumeDriver.Capabilities", {}],
        ["VolumeDriver.Get", { Name: "a1" }],
        ["VolumeDriver.Path", { Name: "a1" }],
      ] as const
    ) {
      const reply = await within(500, method, plugin.call(method, body));
      assert.equal(reply.status, 200, `${method}: ${reply.text}`);
    }
    const stuck = await within(2500, "the Create that waits for the disk", pending);
    assert.equal(stuck.status, 500);
    assert.match(stuck.text, /did not reach the disk within 1 s/);
    // The actor whose change is stuck says so at once rather than wait for the disk.
    const getStuck = await within(
      500,
      "Get of the stuck volume",
      plugin.call("VolumeDriver.Get", { Name: "b1" }),
    );
    assert.equal(getStuck.status, 500);
    assert.match(getStuck.text, /did not reach the disk/);
    const refused = await within(
      500,
      "a Create while stalled",
      plugin.call("VolumeDriver.Create", { Name: "c1" }),
    );
    assert.equal(refused.status, 500);
    assert.match(refused.text, /stalled/);
    // List answers at once with what is on disk: a1, not the held-up b1.
    const list = await within(500, "List", plugin.call("VolumeDriver.List", {}));
    assert.equal(list.status, 200, list.text);
    const names = (list.body as { Volumes: { Name: string }[] }).Volumes.map((v) => v.Name);
    assert.deepEqual(names, ["a1"]);
    assert.equal(berth.stderr().split("\n").filter((line) => /stalled/.test(line)).length, 1);
  } finally {
    await freeze(disk.path, "-u");
  }
  // The stalled write lands first; until then changes are still refused.
  await waitFor(() => /reached the disk again/.test(berth.stderr()), "the thawed write", 5000);
  const after = await within(
    5000,
    "a Create after the thaw",
    plugin.call("VolumeDriver.Create", { Name: "d1" }),
  );
  assert.equal(after.status, 200, after.text);
  let last = "";
  // The Create the disk held up lands, and its effect runs then: the volume is there.
  await waitFor(
    async () => {
      const get = await plugin.call("VolumeDriver.Get", { Name: "b1" });
      last = get.text;
      return get.status === 200 && /"state":"unmounted"/.test(get.text);
    },
    "the held-up Create to finish",
    5000,
  ).catch((error) => {
    throw new Error(`${error.message}: ${last}\n${berth.stderr()}`);
  });
  berth.kill("SIGTERM");
  assert.equal((await berth.exited()).code, 0);
  const synced = /stopped; log synced at event (\d+)/.exec(berth.stderr());
  assert.equal(Number(synced?.[1]), recordsOnDisk(stateDir), berth.stderr());
});
