// Replays the volume traffic a real dockerd 20.10 sent (tests/fixtures/dockerd-20.10), request by
// request in recorded order, and checks each answer has the shape and meaning dockerd needs.
import assert from "node:assert/strict";
import { type Call, startInProcess } from "../../helpers/plugin_socket.ts";
import { tempDir } from "../../helpers/temp_dir.ts";

type Recorded = {
  path: string;
  rawBody: string;
  response: { status: number; body: Record<string, unknown> | null };
};

const FIXTURES = new URL("../../fixtures/dockerd-20.10/", import.meta.url);
/** Scenarios in the order they were recorded against one plugin; "restart" restarts Berth. */
const SCENARIOS = [
  "01-first-contact-volume-create",
  "02-volume-create-with-opts",
  "03-volume-create-again-existing",
  "04-volume-inspect",
  "05-volume-ls",
  "06-run-rm-with-volume",
  "06b-run-implicit-and-anonymous-volumes",
  "06c-run-start-fails-with-implicit-volumes",
  "07a-run-detached-long-running",
  "07b-stop",
  "07c-start",
  "07d-stop-then-rm",
  "08a-two-containers-share-volume",
  "08b-rm-force-sharing-containers",
  "09a-volume-rm-in-use",
  "09b-volume-rm-unused",
  "10-volume-prune",
  "10b-volume-prune-all-flag",
  "11a-err-create",
  "11b-err-mount",
  "11c-err-unmount-remove-get",
  "11d-err-get-falls-back-to-local",
  "40a-kill9-setup",
  "restart",
  "40d-kill9-restart-during-retry",
  "40e-after-restart",
  "70-misc",
];
/** Volumes the recorder had from outside dockerd; Berth never heard of them. */
const EXTERNAL = new Set(["vexternal", "vext2"]);
const KNOWN_OPTIONS = new Set(["uid", "gid", "mode"]);
const RFC3339_REGEXP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function succeeded(response: Recorded["response"]): boolean {
  const body = response.body ?? {};
  return response.status === 200 && !body.Err && !body.Error;
}

async function load(name: string): Promise<Recorded[]> {
  const all: Recorded[] = JSON.parse(await Deno.readTextFile(new URL(`${name}.json`, FIXTURES)));
  return all.filter((request) => /^\/(VolumeDriver\.|Plugin\.Activate)/.test(request.path));
}

/** Checks one answer; `unknown` holds the names Berth has no volume for. */
async function check(call: Call, request: Recorded, unknown: Set<string>, stateDir: string) {
  const method = request.path.slice(1);
  const reply = await call(method, request.rawBody);
  const body = reply.body as Record<string, unknown>;
  const where = `${method} ${request.rawBody.trim()}`;
  assert.equal(reply.contentType, "application/vnd.docker.plugins.v1.2+json", where);
  assert.ok(body && typeof body === "object", `${where}: a JSON object body`);
  const sent = JSON.parse(request.rawBody || "{}") as { Name?: string; Opts?: object | null };
  const name = sent.Name ?? "";
  if (method === "Plugin.Activate") {
    assert.deepEqual(body, { Implements: ["VolumeDriver", "NetworkDriver", "IpamDriver"] });
    return;
  }
  if (method === "VolumeDriver.Create") {
    const extra = Object.keys(sent.Opts ?? {}).filter((key) => !KNOWN_OPTIONS.has(key));
    if (extra.length > 0) {
      assert.equal(reply.status, 400, where);
      assert.match(String(body.Err), new RegExp(`"${extra[0]}"`), where);
      unknown.add(name);
      return;
    }
  }
  if (method === "VolumeDriver.List") {
    assert.equal(reply.status, 200, where);
    const expected = ((request.response.body?.Volumes ?? []) as { Name: string }[])
      .map((volume) => volume.Name).filter((n) => !unknown.has(n) && !EXTERNAL.has(n)).sort();
    const got = body.Volumes as { Name: string; CreatedAt: string }[];
    assert.deepEqual(got.map((volume) => volume.Name), expected, where);
    for (const volume of got) assert.match(volume.CreatedAt, RFC3339_REGEXP);
    return;
  }
  const shouldSucceed = succeeded(request.response) && !unknown.has(name) && !EXTERNAL.has(name);
  if (!shouldSucceed) {
    assert.equal(reply.status, 500, where);
    assert.equal(typeof body.Err, "string", where);
    assert.notEqual(body.Err, "", where);
    return;
  }
  assert.equal(reply.status, 200, `${where}: ${reply.text}`);
  const mountpoint = `${stateDir}/volumes/${name}/_data`;
  switch (method) {
    case "VolumeDriver.Get": {
      const volume = body.Volume as Record<string, unknown>;
      assert.equal(volume.Name, name, "Get echoes the requested name");
      assert.match(String(volume.CreatedAt), RFC3339_REGEXP);
      assert.equal(volume.Mountpoint, mountpoint);
      break;
    }
    case "VolumeDriver.Mount":
      assert.deepEqual(body, { Mountpoint: mountpoint });
      assert.ok(
        (await Deno.stat(mountpoint)).isDirectory,
        "the mountpoint exists when Mount returns",
      );
      break;
    case "VolumeDriver.Capabilities":
      assert.deepEqual(body, { Capabilities: { Scope: "local" } });
      break;
    default:
      assert.deepEqual(body, {}, where);
  }
}

Deno.test("Berth answers the volume traffic recorded from dockerd 20.10 as dockerd needs", async (t) => {
  await using dir = await tempDir();
  let berth = await startInProcess(dir.path);
  const unknown = new Set<string>();
  try {
    for (const scenario of SCENARIOS) {
      if (scenario === "restart") {
        await berth[Symbol.asyncDispose]();
        berth = await startInProcess(dir.path);
        continue;
      }
      const requests = await load(scenario);
      await t.step(`${scenario} (${requests.length} requests)`, async () => {
        for (const request of requests) await check(berth.call, request, unknown, berth.stateDir);
      });
    }
  } finally {
    await berth[Symbol.asyncDispose]();
  }
  assert.deepEqual(berth.problems(), []);
});
