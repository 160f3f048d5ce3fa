// berth log, history, state and verify as real child processes over real state dirs: a log written
// by a real engine on a file store, and a running Berth whose lock they must not need.
import assert from "node:assert/strict";
import { join } from "node:path";
import type { ActorId, KindName } from "../../machines/mod.ts";
import { createEngine, type Engine } from "../../src/engine/engine.ts";
import { NO_EFFECTS } from "../../src/engine/effects.ts";
import { createVolumeEffects } from "../../src/engine/volume_effects.ts";
import { type ActorView, actorView } from "../../src/inspect/view.ts";
import { openFileStore } from "../../src/log/file_store.ts";
import { listSegments, scanLog } from "../../src/log/reader.ts";
import type { LogRecord } from "../../src/log/store.ts";
import { runBerth } from "../helpers/berth_process.ts";
import { startInProcess } from "../helpers/plugin_socket.ts";
import { createRecordingBackend } from "../helpers/recording_backend.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const KINDS: KindName[] = ["volume", "network", "endpoint", "pool"];

type Driven = { records: LogRecord[]; states: Map<number, ActorView[]> };

function viewsNow(engine: Engine): ActorView[] {
  const views = KINDS.flatMap((kind) =>
    engine.list(kind).map(([id, snapshot]) => actorView(id, snapshot))
  );
  return JSON.parse(JSON.stringify(views.sort((a, b) => (a.id < b.id ? -1 : 1))));
}

/**
 * Writes `<stateDir>/log` with a real engine (small segments; a backend that takes any option, so
 * a secret one can be logged) and notes every actor's view after each command.
 */
async function driveStateDir(stateDir: string): Promise<Driven> {
  const store = await openFileStore({
    dir: join(stateDir, "log"),
    warn: () => {},
    segmentBytes: 500,
  });
  const records: LogRecord[] = [];
  store.subscribe((record) => records.push(record));
  let now = 1_700_000_000_000;
  const fake = createRecordingBackend();
  const engine = createEngine({
    store,
    effects: {
      volume: createVolumeEffects({ ...fake.backend, checkOptions() {} }),
      pool: NO_EFFECTS,
    },
    clock: () => ++now,
  });
  const states = new Map<number, ActorView[]>([[0, []]]);
  const steps: [ActorId, { type: string; [field: string]: unknown }][] = [
    ["volume/db", { type: "volume.create", opts: { password: "hunter2", mode: "0700" } }],
    ["volume/web", { type: "volume.create", opts: {} }],
    ["volume/db", { type: "volume.mount", mountId: "m1" }],
    ["pool/198.18.9.0/24", {
      type: "pool.request",
      cidr: "198.18.9.0/24",
      space: "BerthLocal",
      options: {},
    }],
    ["volume/db", { type: "volume.mount", mountId: "m2" }],
    ["volume/web", { type: "volume.remove" }],
    ["volume/db", { type: "volume.unmount", mountId: "m1" }],
  ];
  for (const [actor, event] of steps) {
    await engine.dispatch(actor, event);
    states.set(store.lastSeq, viewsNow(engine));
  }
  await store.close();
  return { records, states };
}

const lines = (text: string) => text.split("\n").filter((line) => line !== "");

Deno.test("berth log prints records, filtered by actor, type and range; --json one per line", async () => {
  await using dir = await tempDir();
  const { records } = await driveStateDir(dir.path);
  assert.ok((await listSegments(join(dir.path, "log"))).length > 2);
  const all = await runBerth(["log", "--state-dir", dir.path]);
  assert.equal(all.code, 0, all.stderr);
  assert.equal(lines(all.stdout).length, records.length);
  assert.equal(
    lines(all.stdout)[2],
    `3  ${new Date(records[2]!.at).toISOString()}  volume/web  volume.create  {"opts":{}}`,
  );
  const some = await runBerth(
    ["log", "--actor", "volume/db", "--type", "volume.mount", "--from", "3", "--to", "9", "--json"],
    { BERTH_STATE_DIR: dir.path },
  );
  assert.equal(some.code, 0, some.stderr);
  const expected = records.filter((record) =>
    record.actor === "volume/db" && record.type === "volume.mount" && record.seq >= 3 &&
    record.seq <= 9
  );
  assert.ok(expected.length > 0);
  assert.deepEqual(
    lines(some.stdout).map((line) => JSON.parse(line)),
    expected.map((record) => ({ ...record, time: new Date(record.at).toISOString() })),
  );
});

Deno.test("berth history shows an actor's events, its state now and the mounts that hold it", async () => {
  await using dir = await tempDir();
  const { records } = await driveStateDir(dir.path);
  const { code, stdout, stderr } = await runBerth([
    "history",
    "volume/db",
    "--state-dir",
    dir.path,
  ]);
  assert.equal(code, 0, stderr);
  const shown = lines(stdout);
  const ofDb = records.filter((record) => record.actor === "volume/db");
  assert.equal(shown.length, ofDb.length + 2);
  assert.match(
    shown[2]!,
    /^\d+ {2}\S+ {2}volume\.mount {2}\{"mountId":"m1"\} {2}unmounted -> mounting {2}succeeded$/,
  );
  assert.match(shown.at(-2)!, /^now: volume\/db is mounted {2}\{/);
  const m2 = ofDb.find((record) => record.data.mountId === "m2")!;
  assert.equal(
    shown.at(-1),
    `held by 1 mount ID: m2 since ${new Date(m2.at).toISOString()} (seq ${m2.seq})`,
  );
  const json = await runBerth(["history", "volume/web", "--json", "--state-dir", dir.path]);
  const body = JSON.parse(json.stdout) as { actor: unknown; entries: { state: string }[] };
  assert.equal(body.actor, null);
  assert.equal(body.entries.at(-1)!.state, "gone");

  const unknown = await runBerth(["history", "volume/x", "--state-dir", dir.path]);
  assert.equal(unknown.code, 1);
  assert.equal(unknown.stdout, "");
  assert.equal(
    unknown.stderr,
    `[ERROR] berth: Cannot show history of volume/x: no event of it in ${dir.path}\n`,
  );
  assert.equal((await runBerth(["history", "boat/x", "--state-dir", dir.path])).code, 2);
});

Deno.test("berth state --at SEQ equals the state that existed at SEQ", async () => {
  await using dir = await tempDir();
  const { states } = await driveStateDir(dir.path);
  const seqs = [...states.keys()];
  for (const seq of [0, seqs[2]!, seqs[4]!, seqs.at(-1)!]) {
    const { code, stdout, stderr } = await runBerth(
      ["state", "--at", String(seq), "--json", "--state-dir", dir.path],
    );
    assert.equal(code, 0, stderr);
    assert.deepEqual(JSON.parse(stdout), { at: seq, actors: states.get(seq) }, `at ${seq}`);
  }
  const now = await runBerth(["state", "--kind", "volume", "--state-dir", dir.path]);
  const last = states.get(seqs.at(-1)!)!.filter((view) => view.kind === "volume");
  assert.deepEqual(lines(now.stdout), [
    `as of sequence ${seqs.at(-1)}: ${last.length} actor${last.length === 1 ? "" : "s"}`,
    ...last.map((view) => `${view.id}  ${view.state}  ${JSON.stringify(view.context)}`),
  ]);
  const past = await runBerth(["state", "--at", "999", "--state-dir", dir.path]);
  assert.equal(past.code, 1);
  assert.equal(
    past.stderr,
    `[ERROR] berth: Cannot show the state at sequence 999: the log ends at sequence ${
      seqs.at(-1)
    }\n`,
  );
  assert.equal((await runBerth(["state", "--at", "x", "--state-dir", dir.path])).code, 2);
});

Deno.test("berth verify: ok on a clean log, the first damage's file and offset on a flipped byte", async () => {
  await using dir = await tempDir();
  const { records, states } = await driveStateDir(dir.path);
  const logDir = join(dir.path, "log");
  const segments = await listSegments(logDir);
  const live = states.get(records.at(-1)!.seq)!.length;
  const clean = await runBerth(["verify", "--state-dir", dir.path]);
  assert.equal(clean.code, 0, clean.stderr);
  assert.equal(
    clean.stdout,
    `ok: ${records.length} records in ${segments.length} segments, ` +
      `last sequence ${records.length}, ${live} live actors, 0 snapshots\n`,
  );
  // A record in the middle of the middle segment.
  const middle = segments[Math.floor(segments.length / 2)]!;
  const inMiddle = [];
  for await (const entry of scanLog(logDir)) if (entry.file === middle.path) inMiddle.push(entry);
  const target = inMiddle[Math.floor(inMiddle.length / 2)]!;
  const bytes = await Deno.readFile(target.file);
  bytes[target.offset + 40] = bytes[target.offset + 40]! ^ 0x02;
  await Deno.writeFile(target.file, bytes);
  const damaged = await runBerth(["verify", "--state-dir", dir.path]);
  assert.equal(damaged.code, 1);
  assert.equal(damaged.stdout, "");
  assert.equal(
    damaged.stderr,
    `[ERROR] berth: Cannot verify log: ${target.file} is damaged at byte ${target.offset} ` +
      `(sequence ${target.record.seq}): checksum mismatch\n`,
  );
  const json = await runBerth(["verify", "--json", "--state-dir", dir.path]);
  assert.equal(json.code, 1);
  assert.deepEqual(JSON.parse(json.stdout), {
    ok: false,
    file: target.file,
    offset: target.offset,
    seq: target.record.seq,
    reason: "checksum mismatch",
  });
});

Deno.test("no log command ever prints a secret option's value", async () => {
  await using dir = await tempDir();
  await driveStateDir(dir.path);
  for (
    const args of [
      ["log"],
      ["log", "--json"],
      ["history", "volume/db"],
      ["history", "volume/db", "--json"],
      ["state"],
      ["state", "--json"],
      ["verify", "--json"],
    ]
  ) {
    const { code, stdout, stderr } = await runBerth([...args, "--state-dir", dir.path]);
    assert.equal(code, 0, `${args.join(" ")}: ${stderr}`);
    assert.doesNotMatch(stdout + stderr, /hunter2/, args.join(" "));
  }
  const { stdout } = await runBerth(["log", "--actor", "volume/db", "--state-dir", dir.path]);
  assert.match(lines(stdout)[0]!, /\{"opts":\{"password":"\*{8}","mode":"0700"\}\}$/);
});

Deno.test("a state dir without a log: one line, exit 1", async () => {
  await using dir = await tempDir();
  for (const command of ["log", "history volume/db", "state", "verify"]) {
    const { code, stdout, stderr } = await runBerth([
      ...command.split(" "),
      "--state-dir",
      join(dir.path, "none"),
    ]);
    assert.equal(code, 1, command);
    assert.equal(stdout, "");
    assert.equal(
      stderr,
      `[ERROR] berth: Cannot read the log of ${join(dir.path, "none")}: no log there ` +
        `(${join(dir.path, "none", "log")} does not exist)\n`,
      command,
    );
  }
});

Deno.test("log commands read a running Berth's state dir without its lock; --follow tails it", async () => {
  await using dir = await tempDir();
  await using berth = await startInProcess(dir.path);
  for (const name of ["one", "two"]) {
    assert.equal((await berth.call("VolumeDriver.Create", { Name: name })).status, 200);
  }
  assert.equal((await berth.call("VolumeDriver.Mount", { Name: "one", ID: "c1" })).status, 200);
  const state = ["--state-dir", berth.stateDir];
  const log = await runBerth(["log", ...state]);
  assert.equal(log.code, 0, log.stderr);
  assert.equal(lines(log.stdout).length, berth.berth.store.lastSeq);
  for (const args of [["verify"], ["state"], ["history", "volume/one"]]) {
    const result = await runBerth([...args, ...state]);
    assert.equal(result.code, 0, `${args[0]}: ${result.stderr}`);
  }

  const follower = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "log", "--follow", ...state],
    env: { BERTH_ADMIN: "off" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(follower.stderr).text();
  const reader = follower.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const until = async (done: () => boolean) => {
    while (!done()) {
      const chunk = await reader.read();
      if (chunk.done) throw new Error(`berth log --follow ended early:\n${text}\n${await stderr}`);
      text += chunk.value;
    }
  };
  try {
    await until(() => lines(text).length === berth.berth.store.lastSeq);
    assert.equal((await berth.call("VolumeDriver.Create", { Name: "late" })).status, 200);
    await until(() => text.includes("volume/late  effect.succeeded"));
    follower.kill("SIGINT");
    await until(() => false).catch(() => {}); // read to the end
    assert.equal((await follower.status).code, 0, await stderr);
    assert.equal(lines(text).length, berth.berth.store.lastSeq);
  } finally {
    await reader.cancel().catch(() => {});
    try {
      follower.kill("SIGKILL");
    } catch { /* already ended */ }
    await follower.status;
    await stderr;
  }
});
