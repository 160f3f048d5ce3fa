// Connections as an attacker holds them: more than the open-file limit allows, and slow ones
// (slowloris). Berth is a real child process with its own open-file limit (prlimit).
import assert from "node:assert/strict";
import { join } from "node:path";
import { adminClient } from "../../helpers/admin_client.ts";
import { spawnBerth } from "../../helpers/berth_process.ts";
import { parsePrometheus, sampleValue } from "../../helpers/prometheus.ts";
import { connectPlugin } from "../../helpers/plugin_client.ts";
import { onPath, skipUnless } from "../../helpers/skip.ts";
import { tempDir } from "../../helpers/temp_dir.ts";

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();

/** Opens `count` connections and keeps them; the disposer closes every one. */
async function hold(socket: string, count: number): Promise<Deno.UnixConn[] & Disposable> {
  const conns: Deno.UnixConn[] = [];
  for (let i = 0; i < count; i++) {
    conns.push(await Deno.connect({ transport: "unix", path: socket }));
  }
  return Object.assign(conns, {
    [Symbol.dispose]() {
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // closed by Berth already
        }
      }
    },
  });
}

/** Sends one Activate on `conn` and reads what comes back until the reply is whole or EOF. */
async function activate(conn: Deno.Conn): Promise<string> {
  await conn.write(
    ENCODER.encode("POST /Plugin.Activate HTTP/1.1\r\nHost: p\r\nContent-Length: 0\r\n\r\n"),
  );
  return await readSome(conn);
}

async function readSome(conn: Deno.Conn, timeoutMs = 10_000): Promise<string> {
  const buffer = new Uint8Array(4096);
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    const count = await conn.read(buffer);
    return count === null ? "" : DECODER.decode(buffer.subarray(0, count));
  } catch {
    return "";
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves with the ms until Berth closes `conn` (a read returns EOF or fails). */
async function closedAfter(conn: Deno.Conn): Promise<number> {
  const start = Date.now();
  const buffer = new Uint8Array(1024);
  try {
    while ((await conn.read(buffer)) !== null) {
      // a reply before the close is fine; keep reading until the end
    }
  } catch {
    // reset: closed too
  }
  return Date.now() - start;
}

const FLOOD = "more connections than files: Berth refuses the excess, never dies, serves the rest";
Deno.test(
  { name: FLOOD, ignore: skipUnless(FLOOD, onPath("prlimit") ? null : "needs prlimit") },
  async (t) => {
    await using dir = await tempDir();
    const socket = join(dir.path, "berth.sock");
    const args = ["serve", "--socket", socket, "--state-dir", join(dir.path, "state")];

    await t.step("with the default cap (open files less 256) the excess gets 503", async () => {
      const adminSocket = join(dir.path, "admin.sock");
      await using berth = spawnBerth([...args, "--admin", adminSocket], {}, { openFiles: 1024 });
      await berth.ready(socket);
      using held = await hold(socket, 1100);
      const refused = held.at(-1)!;
      assert.match(await readSome(refused), /^HTTP\/1.1 503[\s\S]*at most 768 connections/);
      const reply = await activate(held[0]!);
      assert.match(reply, /^HTTP\/1.1 200/, "a held connection is still served");
      using admin = adminClient({ transport: "unix", path: adminSocket });
      const { samples } = parsePrometheus((await admin.get("/metrics")).text);
      assert.equal(sampleValue(samples, "berth_plugin_connections"), 768);
      assert.ok(sampleValue(samples, "berth_plugin_connections_refused_total") >= 300);
      held[Symbol.dispose]();
      const client = await connectPlugin(socket);
      const after = await client.call("/VolumeDriver.Create", { Name: "after-flood" });
      client.close();
      assert.equal(after.status, 200, "new connections are served once the flood ends");
      assert.equal(berth.child.pid > 0 && !berth.stderr().includes("Uncaught"), true);
    });

    await t.step("a cap above the file limit hits EMFILE: Berth waits and goes on", async () => {
      await using berth = spawnBerth([...args, "--max-connections", "5000"], {}, {
        openFiles: 512,
      });
      await berth.ready(socket);
      {
        using _held = await hold(socket, 1000);
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      const client = await connectPlugin(socket);
      let reply;
      for (let attempt = 0; attempt < 50; attempt++) {
        reply = await client.call("/VolumeDriver.Create", { Name: "after-emfile" }).catch(() =>
          null
        );
        if (reply) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      client.close();
      assert.equal(reply?.status, 200, berth.stderr());
      assert.match(berth.stderr(), /cannot accept a connection: .*[Tt]oo many open files/);
      assert.doesNotMatch(berth.stderr(), /Uncaught/);
      berth.kill("SIGTERM");
      assert.equal((await berth.exited()).code, 0, berth.stderr());
    });
  },
);

const SLOW = "slow and idle connections are closed after their timeouts; others are served";
Deno.test(SLOW, async () => {
  await using dir = await tempDir();
  const socket = join(dir.path, "berth.sock");
  await using berth = spawnBerth([
    "serve",
    "--socket",
    socket,
    "--state-dir",
    join(dir.path, "state"),
    "--request-timeout",
    "1",
    "--idle-timeout",
    "2",
  ]);
  await berth.ready(socket);
  using conns = await hold(socket, 3);
  const [partialHead, partialBody, idle] = conns;
  await partialHead!.write(ENCODER.encode("POST /VolumeDriver.Create HTTP/1.1\r\nHost: p\r\n"));
  await partialBody!.write(
    ENCODER.encode('POST /VolumeDriver.Create HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"Na'),
  );
  const closing = [closedAfter(partialHead!), closedAfter(partialBody!), closedAfter(idle!)];
  const client = await connectPlugin(socket);
  const served = await client.call("/VolumeDriver.Create", { Name: "meanwhile" });
  assert.equal(served.status, 200);
  const [head = 0, body = 0, idled = 0] = await Promise.all(closing);
  client.close();
  assert.ok(head >= 900 && head < 3000, `a partial head was closed after ${head} ms`);
  assert.ok(body >= 900 && body < 3000, `a partial body was closed after ${body} ms`);
  assert.ok(idled >= 1900 && idled < 4000, `an idle connection was closed after ${idled} ms`);
});
