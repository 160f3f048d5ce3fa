// berth serve's admin endpoint as a real process: where it listens by default, what it refuses,
// and that /healthz says "starting" until the log is replayed and the plugin socket listens.
import assert from "node:assert/strict";
import { join } from "node:path";
import { adminClient } from "../helpers/admin_client.ts";
import { writeBigLog } from "../helpers/big_log.ts";
import { runBerth, spawnBerth } from "../helpers/berth_process.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const ADMIN_LINE_REGEXP = /admin on http:\/\/127\.0\.0\.1:(\d+)/;

async function adminPort(berth: { stderr(): string }): Promise<number> {
  for (let i = 0; i < 2000; i++) {
    const match = ADMIN_LINE_REGEXP.exec(berth.stderr());
    if (match) return Number(match[1]);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`no admin line:\n${berth.stderr()}`);
}

Deno.test("serve refuses a non-loopback --admin at start, saying why, exit 1", async () => {
  await using dir = await tempDir();
  for (const admin of ["0.0.0.0:9000", "198.18.0.1:9000", "[::]:9000"]) {
    const { code, stderr } = await runBerth([
      "--socket",
      join(dir.path, "b.sock"),
      "--state-dir",
      join(dir.path, "s"),
      "--admin",
      admin,
    ]);
    assert.equal(code, 1, admin);
    assert.match(stderr, /is not a loopback address/);
    assert.equal(stderr.trim().split("\n").length, 1, stderr);
  }
});

Deno.test("serve's admin socket defaults to /run/berth/NAME.sock, mode 0600, gone at stop", async () => {
  await using dir = await tempDir();
  const name = `berth-test-${Deno.pid}-${Date.now() % 100000}`;
  const path = `/run/berth/${name}.sock`;
  const socket = join(dir.path, "b.sock");
  await using berth = spawnBerth(["--name", name, "--socket", socket, "--state-dir", dir.path], {
    BERTH_ADMIN: path,
  });
  // The same default as without the env: asserted by the help text test; here the path is real.
  await berth.ready();
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  using admin = adminClient({ transport: "unix", path });
  assert.equal((await admin.get("/healthz")).status, 200);
  berth.kill("SIGTERM");
  assert.equal((await berth.exited()).code, 0, berth.stderr());
  await assert.rejects(() => Deno.lstat(path), Deno.errors.NotFound);
});

Deno.test("/healthz is 503 while a long log replays and 200 once the plugin socket listens", async () => {
  await using dir = await tempDir();
  const stateDir = join(dir.path, "s");
  await writeBigLog(stateDir, 200_000);
  const socket = join(dir.path, "b.sock");
  await using berth = spawnBerth([
    "--socket",
    socket,
    "--state-dir",
    stateDir,
    "--admin",
    "127.0.0.1:0",
  ]);
  const port = await adminPort(berth);
  using admin = adminClient({ transport: "tcp", hostname: "127.0.0.1", port });
  const seen: string[] = [];
  let apiWaited = false;
  for (let i = 0; i < 4000; i++) {
    // The API first: once it answers, the health check must too (ready never goes back).
    const api = await admin.get("/api/actors");
    const reply = await admin.get("/healthz");
    if (api.status === 200) assert.equal(reply.status, 200, "the API answered before /healthz");
    else if (reply.status === 503) apiWaited = api.status === 503 || apiWaited;
    const line = `${reply.status} ${reply.text}`;
    if (seen.at(-1) !== line) seen.push(line);
    if (reply.status === 200) break;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.ok(apiWaited, "the API answered 503 while the log replayed");
  assert.deepEqual(seen, ['503 {"status":"starting"}', '200 {"status":"ok"}']);
  (await Deno.connect({ transport: "unix", path: socket })).close();
});
