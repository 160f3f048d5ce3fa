// stateAt over a real log: the engine's live state captured after every command equals the state
// replayed from the log on disk up to that sequence number.
import assert from "node:assert/strict";
import type { ActorId, KindName } from "../../machines/mod.ts";
import { createEngine, type Engine } from "../../src/engine/engine.ts";
import { NO_EFFECTS } from "../../src/engine/effects.ts";
import { createVolumeEffects } from "../../src/engine/volume_effects.ts";
import { HistoryCompactedError, saveSnapshot } from "../../src/engine/snapshots.ts";
import { SequencePastEndError, stateAt, timeTravel } from "../../src/inspect/time_travel.ts";
import { pruneLog } from "../../src/log/compaction.ts";
import { listSnapshots } from "../../src/log/snapshot_file.ts";
import { type ActorView, actorView } from "../../src/inspect/view.ts";
import { openFileStore } from "../../src/log/file_store.ts";
import { listSegments } from "../../src/log/reader.ts";
import { createRecordingBackend } from "../helpers/recording_backend.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const KINDS: KindName[] = ["volume", "network", "endpoint", "pool"];

function viewsNow(engine: Engine): ActorView[] {
  const views = KINDS.flatMap((kind) =>
    engine.list(kind).map(([id, snapshot]) => actorView(id, snapshot))
  );
  return views.sort((a, b) => (a.id < b.id ? -1 : 1));
}

type Step = [ActorId, { type: string; [field: string]: unknown }];

const STEPS: Step[] = [
  ["volume/a", { type: "volume.create", opts: {} }],
  ["volume/b", { type: "volume.create", opts: { mode: "0700" } }],
  ["volume/a", { type: "volume.mount", mountId: "m1" }],
  ["pool/198.18.9.0/24", {
    type: "pool.request",
    cidr: "198.18.9.0/24",
    space: "BerthLocal",
    options: {},
  }],
  ["volume/a", { type: "volume.mount", mountId: "m2" }],
  ["pool/198.18.9.0/24", { type: "pool.address.reserve", address: "198.18.9.1", role: "gateway" }],
  ["volume/b", { type: "volume.remove" }],
  ["volume/a", { type: "volume.unmount", mountId: "m1" }],
  ["volume/b", { type: "volume.create", opts: {} }],
  ["volume/a", { type: "volume.unmount", mountId: "m2" }],
];

/** Drives STEPS; returns the live views after each, keyed by the last sequence number then. */
async function driveLog(
  dir: string,
  snapshotAfter: ReadonlySet<number> = new Set(),
): Promise<Map<number, ActorView[]>> {
  const store = await openFileStore({ dir, warn: () => {}, segmentBytes: 500 });
  let now = 1_700_000_000_000;
  const engine = createEngine({
    store,
    effects: { volume: createVolumeEffects(createRecordingBackend().backend), pool: NO_EFFECTS },
    clock: () => ++now,
  });
  const seen = new Map<number, ActorView[]>([[0, []]]);
  for (const [actor, event] of STEPS) {
    await engine.dispatch(actor, event);
    seen.set(store.lastSeq, viewsNow(engine));
    if (snapshotAfter.has(seen.size - 1)) {
      const { seq, actors } = engine.capture(() => true);
      await saveSnapshot(dir, seq, actors, now);
    }
  }
  await store.close();
  return seen;
}

Deno.test("stateAt gives every actor as it stood right after each sequence number", async () => {
  await using dir = await tempDir();
  const seen = await driveLog(dir.path);
  assert.ok((await listSegments(dir.path)).length > 2);
  for (const [seq, views] of seen) {
    assert.deepEqual(stripped(await stateAt(dir.path, seq)), stripped(views), `at ${seq}`);
  }
});

Deno.test("timeTravel without a sequence number gives the state after the last record", async () => {
  await using dir = await tempDir();
  const seen = await driveLog(dir.path);
  const last = Math.max(...seen.keys());
  const now = await timeTravel(dir.path);
  assert.equal(now.seq, last);
  assert.deepEqual(stripped(now.actors), stripped(seen.get(last)!));
});

Deno.test("stateAt refuses a sequence number past the end of the log", async () => {
  await using dir = await tempDir();
  const seen = await driveLog(dir.path);
  const last = Math.max(...seen.keys());
  await assert.rejects(
    () => stateAt(dir.path, last + 1),
    (error: unknown) =>
      error instanceof SequencePastEndError &&
      error.message ===
        `Cannot show the state at sequence ${last + 1}: the log ends at sequence ${last}`,
  );
});

/** Through JSON, as the command line prints them (null-prototype objects compare as plain). */
function stripped(views: ActorView[]): unknown {
  return JSON.parse(JSON.stringify(views));
}

Deno.test("stateAt starts from the newest snapshot before the sequence and agrees with the log", async () => {
  await using dir = await tempDir();
  const seen = await driveLog(dir.path, new Set([3, 7]));
  assert.equal((await listSnapshots(dir.path)).length, 2);
  for (const [seq, views] of seen) {
    assert.deepEqual(stripped(await stateAt(dir.path, seq)), stripped(views), `at ${seq}`);
  }
});

Deno.test("after compaction, stateAt before the oldest kept snapshot says the history is gone", async () => {
  await using dir = await tempDir();
  const seen = await driveLog(dir.path, new Set([3, 7]));
  const pruned = await pruneLog(dir.path, { keep: 1 });
  assert.ok(pruned.segments.length > 0, "segments covered by the kept snapshot are removed");
  assert.equal(pruned.snapshots.length, 1);
  const [kept] = await listSnapshots(dir.path);
  const firstSeq = (await listSegments(dir.path))[0]!.firstSeq;
  assert.ok(firstSeq > 1 && firstSeq <= kept!.seq + 1);
  for (const [seq, views] of seen) {
    if (seq >= kept!.seq) {
      assert.deepEqual(stripped(await stateAt(dir.path, seq)), stripped(views), `at ${seq}`);
    } else {
      await assert.rejects(
        () => stateAt(dir.path, seq),
        (error: unknown) =>
          error instanceof HistoryCompactedError &&
          error.message ===
            `Cannot show the state at sequence ${seq}: the log before sequence ${firstSeq} was ` +
              `compacted; the oldest state kept is at sequence ${kept!.seq}`,
        `at ${seq}`,
      );
    }
  }
});
