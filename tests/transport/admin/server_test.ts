// The admin endpoint over a real unix socket and a real loopback port, in front of a real Berth
// driven through its plugin socket.
import assert from "node:assert/strict";
import { join } from "node:path";
import type { KindName } from "../../../machines/mod.ts";
import { type ActorView, actorView, MASK } from "../../../src/inspect/view.ts";
import { encodeRecord } from "../../../src/log/record.ts";
import type { RunningBerth } from "../../../src/start_berth.ts";
import { adminClient } from "../../helpers/admin_client.ts";
import { startInProcess } from "../../helpers/plugin_socket.ts";
import { parsePrometheus, sampleValue } from "../../helpers/prometheus.ts";
import { tempDir } from "../../helpers/temp_dir.ts";

const KINDS: KindName[] = ["volume", "network", "endpoint", "pool"];

/** One raw HTTP/1.1 GET with whatever Host header a caller likes (fetch will not send any). */
async function rawGet(port: number, path: string, host: string): Promise<string> {
  const connection = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const request = `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
    await connection.write(new TextEncoder().encode(request));
    let text = "";
    const buffer = new Uint8Array(4096);
    for (;;) {
      const n = await connection.read(buffer);
      if (n === null) return text;
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
  } finally {
    connection.close();
  }
}

function viewsNow(berth: RunningBerth): ActorView[] {
  const views = KINDS.flatMap((kind) =>
    berth.engine.list(kind).map(([id, snapshot]) => actorView(id, snapshot))
  );
  // Through JSON, as the API sends them.
  return JSON.parse(JSON.stringify(views.sort((a, b) => (a.id < b.id ? -1 : 1))));
}

Deno.test("admin socket is 0600 and serves the page, its assets and /healthz, nothing remote", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "admin.sock");
  await using berth = await startInProcess(dir.path, { admin: { transport: "unix", path } });
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  using admin = adminClient({ transport: "unix", path });
  assert.deepEqual((await admin.get("/healthz")).json(), { status: "ok" });
  const page = await admin.get("/");
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type")!, /text\/html/);
  assert.match(
    page.headers.get("content-security-policy")!,
    /default-src 'none'; script-src 'self'/,
  );
  for (const asset of ["/assets/inspector.js", "/assets/inspector.css"]) {
    assert.ok(page.text.includes(asset), `the page loads ${asset}`);
    const reply = await admin.get(asset);
    assert.equal(reply.status, 200, asset);
    assert.doesNotMatch(reply.text, /https?:\/\//, `${asset} loads nothing from elsewhere`);
  }
  assert.doesNotMatch(page.text, /https?:\/\//);
  assert.equal((await admin.get("/api/nope")).status, 404);
  assert.equal((await admin.get("/api/actors", { method: "POST" })).status, 405);
  assert.equal(berth.errors.length, 0, berth.errors.join("\n"));
});

Deno.test("admin API: actors, filters, history and ?at=SEQ equal to the states that existed", async (t) => {
  await using dir = await tempDir();
  const path = join(dir.path, "admin.sock");
  await using berth = await startInProcess(dir.path, { admin: { transport: "unix", path } });
  using admin = adminClient({ transport: "unix", path });
  const seen: { seq: number; views: ActorView[] }[] = [{ seq: 0, views: [] }];
  const calls: [string, unknown][] = [
    ["VolumeDriver.Create", { Name: "v1" }],
    ["VolumeDriver.Create", { Name: "v2" }],
    ["VolumeDriver.Mount", { Name: "v1", ID: "m1" }],
    ["VolumeDriver.Mount", { Name: "v1", ID: "m2" }],
    ["VolumeDriver.Unmount", { Name: "v1", ID: "m1" }],
    ["IpamDriver.RequestPool", { Pool: "198.18.40.0/24", Options: {}, V6: false }],
    ["IpamDriver.RequestAddress", { PoolID: "198.18.40.0/24", Address: "", Options: {} }],
    ["VolumeDriver.Remove", { Name: "v2" }],
    ["VolumeDriver.Create", { Name: "toString" }],
  ];
  for (const [method, body] of calls) {
    const reply = await berth.call(method, body);
    assert.equal(reply.status, 200, `${method}: ${JSON.stringify(reply.body)}`);
    seen.push({ seq: berth.berth.store.lastSeq, views: viewsNow(berth.berth) });
  }

  await t.step("?at=SEQ gives every actor as it stood then, in any order of asking", async () => {
    const order = [...seen.keys()].reverse().concat([...seen.keys()], [3, 1, 8, 2]);
    for (const index of order) {
      const { seq, views } = seen[index]!;
      const reply = await admin.get(`/api/actors?at=${seq}`);
      assert.equal(reply.status, 200, reply.text);
      assert.deepEqual((reply.json() as { actors: ActorView[] }).actors, views, `at ${seq}`);
    }
    const now = (await admin.get("/api/actors")).json() as { actors: ActorView[] };
    assert.deepEqual(now.actors, seen.at(-1)!.views);
  });

  await t.step("filters by kind, state and name", async () => {
    const ids = async (query: string) =>
      ((await admin.get(`/api/actors?${query}`)).json() as { actors: ActorView[] }).actors
        .map((view) => view.id);
    assert.deepEqual(await ids("kind=volume&state=mounted"), ["volume/v1"]);
    assert.deepEqual(await ids("kind=pool"), ["pool/198.18.40.0/24"]);
    assert.deepEqual(await ids("name=String"), ["volume/toString"]);
  });

  await t.step(
    "an actor's view: snapshot, full history with outcomes, who holds a volume",
    async () => {
      const reply = await admin.get("/api/actors/volume/v1");
      assert.equal(reply.status, 200, reply.text);
      const body = reply.json() as {
        actor: ActorView;
        entries: { seq: number; type: string; state: string; outcome: string }[];
        holders: { mountId: string; seq: number }[];
      };
      assert.equal(body.actor.state, "mounted");
      assert.deepEqual(body.entries.map((entry) => entry.type), [
        "volume.create",
        "effect.succeeded",
        "volume.mount",
        "effect.succeeded",
        "volume.mount",
        "volume.unmount",
      ]);
      assert.deepEqual(body.entries.map((entry) => entry.state), [
        "creating",
        "unmounted",
        "mounting",
        "mounted",
        "mounted",
        "mounted",
      ]);
      assert.deepEqual(body.holders.map((holder) => holder.mountId), ["m2"]);
      const m2 = body.entries.find((entry, i) => entry.type === "volume.mount" && i > 3)!;
      assert.equal(body.holders[0]!.seq, m2.seq);
      const before = (await admin.get(`/api/actors/volume/v1?at=${seen[3]!.seq}`)).json() as {
        actor: ActorView;
        holders: { mountId: string }[];
      };
      assert.equal(before.actor.state, "mounted");
      assert.deepEqual(before.holders.map((holder) => holder.mountId), ["m1"]);
    },
  );

  await t.step("the log API filters by actor, type and range", async () => {
    const log = (await admin.get("/api/log?actor=volume/v2")).json() as {
      records: { type: string }[];
    };
    assert.deepEqual(log.records.map((record) => record.type), [
      "volume.create",
      "effect.succeeded",
      "volume.remove",
      "effect.succeeded",
    ]);
    const page = (await admin.get("/api/log?from=2&limit=3")).json() as {
      records: { seq: number }[];
      next: number;
    };
    assert.deepEqual(page.records.map((record) => record.seq), [2, 3, 4]);
    assert.equal(page.next, 5);
    const asOf = (await admin.get("/api/log?from=2&at=3")).json() as {
      records: { seq: number }[];
    };
    assert.deepEqual(asOf.records.map((record) => record.seq), [2, 3]);
    const mounts = (await admin.get("/api/log?type=volume.mount")).json() as {
      records: unknown[];
    };
    assert.equal(mounts.records.length, 2);
  });

  await t.step("machines: every kind with its graph, counts and drawing", async () => {
    const machines = (await admin.get("/api/machines")).json() as {
      kind: string;
      counts: Record<string, number>;
      svg: string;
    }[];
    assert.deepEqual(machines.map((machine) => machine.kind), KINDS);
    assert.equal(machines[0]!.counts.mounted, 1);
    assert.equal(machines[0]!.counts.unmounted, 1);
    const svg = await admin.get(machines[0]!.svg);
    assert.match(svg.headers.get("content-type")!, /image\/svg\+xml/);
    assert.match(svg.text, /<svg[^>]*class="machine"/);
  });

  await t.step("bad queries are refused with 400 and a reason", async () => {
    const bad = [
      "/api/actors?at=999999",
      "/api/actors?at=-1",
      "/api/actors?kind=x",
      "/api/actors/volume/%E0%A4%A",
      "/api/actors/volume",
      "/api/actors/nope/x",
    ];
    for (const query of bad) {
      const reply = await admin.get(query);
      assert.equal(reply.status, 400, query);
      assert.ok((reply.json() as { error: string }).error.length > 0);
    }
    const unknown = await admin.get("/api/actors/volume/never");
    assert.equal(unknown.status, 404);
    assert.match(unknown.text, /Actor \\"volume\/never\\" has no event in the log/);
  });
  assert.equal(berth.errors.length, 0, berth.errors.join("\n"));
});

Deno.test("/metrics parses as Prometheus text and its counters move when calls arrive", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "admin.sock");
  await using berth = await startInProcess(dir.path, { admin: { transport: "unix", path } });
  using admin = adminClient({ transport: "unix", path });
  const scrape = async () => {
    const reply = await admin.get("/metrics");
    assert.match(reply.headers.get("content-type")!, /text\/plain; version=0\.0\.4/);
    return parsePrometheus(reply.text).samples;
  };
  const before = await scrape();
  await berth.call("VolumeDriver.Create", { Name: "mm" });
  await berth.call("VolumeDriver.Mount", { Name: "mm", ID: "a" });
  await berth.call("VolumeDriver.Remove", { Name: "mm" }); // refused: in use
  await berth.call("VolumeDriver.Nope", {});
  const after = await scrape();
  const ok = { method: "VolumeDriver.Mount", outcome: "ok" };
  assert.equal(sampleValue(before, "berth_calls_total", ok), 0);
  assert.equal(sampleValue(after, "berth_calls_total", ok), 1);
  const refused = { method: "VolumeDriver.Remove", outcome: "refused" };
  assert.equal(sampleValue(after, "berth_calls_total", refused), 1);
  assert.equal(sampleValue(after, "berth_calls_total", { method: "unknown" }), 1);
  assert.ok(sampleValue(after, "berth_log_fdatasync_duration_seconds_count") >= 1);
  assert.equal(sampleValue(after, "berth_log_append_duration_seconds_count"), 4);
  assert.equal(sampleValue(after, "berth_log_events"), 4);
  assert.ok(sampleValue(after, "berth_log_bytes") > 0);
  assert.equal(sampleValue(after, "berth_actors", { kind: "volume", state: "mounted" }), 1);
});

Deno.test("the feed says hello, then sends each change as it is logged", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "admin.sock");
  await using berth = await startInProcess(dir.path, { admin: { transport: "unix", path } });
  using admin = adminClient({ transport: "unix", path });
  const feed = await admin.events();
  try {
    assert.match(feed.contentType!, /text\/event-stream/);
    const hello = await feed.next("hello") as {
      lastSeq: number;
      counts: Record<string, Record<string, number>>;
    };
    assert.equal(hello.lastSeq, 0);
    assert.equal(hello.counts.volume!.mounted, 0);
    await berth.call("VolumeDriver.Create", { Name: "fed" });
    const batch = await feed.next("batch") as {
      records: { actor: string; type: string }[];
      actors: ActorView[];
    };
    assert.deepEqual(batch.records.map((record) => record.type).slice(0, 1), ["volume.create"]);
    assert.ok(batch.actors.some((view) => view.id === "volume/fed"));
  } finally {
    await feed.close();
  }
});

Deno.test("loopback port: answers, and refuses a Host header that is not loopback", async () => {
  await using dir = await tempDir();
  await using berth = await startInProcess(dir.path, {
    admin: { transport: "tcp", hostname: "127.0.0.1", port: 0 },
  });
  const address = berth.berth.admin!.address;
  assert.equal(address.transport, "tcp");
  assert.notEqual(address.transport === "tcp" && address.port, 0);
  using admin = adminClient(address);
  assert.equal((await admin.get("/healthz")).status, 200);
  const port = address.transport === "tcp" ? address.port : 0;
  assert.match(await rawGet(port, "/api/actors", `127.0.0.1:${port}`), /^HTTP\/1\.1 200/);
  assert.match(await rawGet(port, "/api/actors", `localhost:${port}`), /^HTTP\/1\.1 200/);
  // DNS rebinding: a page of another site reaching the port names its own host.
  const rebound = await rawGet(port, "/api/actors", "evil.example:80");
  assert.match(rebound, /^HTTP\/1\.1 403/);
  assert.match(rebound, /Host \\"evil\.example:80\\" is not loopback/);
});

Deno.test("option values whose key looks secret never leave the admin endpoint", async () => {
  await using dir = await tempDir();
  // No backend of today accepts such options, so the record is written as a future one would.
  const stateDir = join(dir.path, "state");
  const data = join(stateDir, "volumes", "vault", "_data");
  await Deno.mkdir(data, { recursive: true });
  await Deno.mkdir(join(stateDir, "log"), { recursive: true });
  const opts = { password: "hunter2", apiKey: "sk-live-1", Credentials: "c3", uid: "1000" };
  const records = [
    { seq: 1, at: 1, actor: "volume/vault", type: "volume.create", v: 1, data: { opts } },
    {
      seq: 2,
      at: 2,
      actor: "volume/vault",
      type: "effect.succeeded",
      v: 1,
      data: { mountpoint: data },
    },
  ];
  await Deno.writeFile(
    join(stateDir, "log", `${"1".padStart(20, "0")}.log`),
    new Uint8Array(records.flatMap((record) => [...encodeRecord(record)])),
  );
  const path = join(dir.path, "admin.sock");
  await using berth = await startInProcess(dir.path, { admin: { transport: "unix", path } });
  using admin = adminClient({ transport: "unix", path });
  const feed = await admin.events();
  try {
    await feed.next("hello");
    await berth.call("VolumeDriver.Mount", { Name: "vault", ID: "c1" });
    const batch = JSON.stringify(await feed.next("batch"));
    const pages = [
      batch,
      (await admin.get("/api/actors")).text,
      (await admin.get("/api/actors/volume/vault")).text,
      (await admin.get("/api/actors?at=1")).text,
      (await admin.get("/api/log")).text,
    ];
    for (const text of pages) {
      assert.ok(text.includes("vault"), text);
      for (const secret of ["hunter2", "sk-live-1", '"c3"']) {
        assert.ok(!text.includes(secret), text);
      }
    }
    assert.ok(pages[1]!.includes('"uid":"1000"'), "other options are shown");
    assert.ok(pages[1]!.includes(`"password":"${MASK}"`));
    // Errors name a refused option, never its value.
    const refusals = [
      await berth.call("VolumeDriver.Create", { Name: "other", Opts: { password: "hunter2" } }),
      await berth.call("IpamDriver.RequestPool", {
        Pool: "198.18.41.0/24",
        Options: { token: "hunter2" },
        V6: false,
      }),
    ];
    for (const reply of refusals) {
      assert.ok(reply.status >= 400, reply.text);
      assert.ok(!reply.text.includes("hunter2"), reply.text);
    }
    assert.ok(!berth.errors.join("\n").includes("hunter2"));
  } finally {
    await feed.close();
  }
});
