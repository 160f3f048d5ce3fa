// Records are never rewritten: replay reads old ones through upcasters, refuses newer ones, and a
// log written by machine version 1, stored here, must replay to the same actors for good.
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Upcaster } from "../../machines/mod.ts";
import { RecordSchemaError, replay, upcast } from "../../src/engine/replay.ts";
import { readLog } from "../../src/log/reader.ts";
import type { LogRecord } from "../../src/log/store.ts";
import { actorView } from "../../src/inspect/view.ts";

const FIXTURE = new URL("../fixtures/logs/", import.meta.url).pathname;

const record = (v: number, type: string, data: Record<string, unknown>): LogRecord => ({
  seq: 9,
  at: 1,
  actor: "volume/db",
  type,
  v,
  data,
});

Deno.test("upcast takes a record through every version up to the machine's", () => {
  const upcasters: Upcaster[] = [
    // v1 → v2: `id` renamed `mountId`.
    ({ type, data: { id, ...rest } }) => ({ type, data: { ...rest, mountId: id } }),
    // v2 → v3: mount events renamed.
    ({ type, data }) => ({ type: type === "mount" ? "volume.mount" : type, data }),
  ];
  const kind = { version: 3, upcasters };
  assert.deepEqual(upcast(kind, record(1, "mount", { id: "a" })), {
    type: "volume.mount",
    data: { mountId: "a" },
  });
  assert.deepEqual(upcast(kind, record(2, "mount", { mountId: "a" })), {
    type: "volume.mount",
    data: { mountId: "a" },
  });
  assert.deepEqual(upcast(kind, record(3, "volume.mount", { mountId: "a" })), {
    type: "volume.mount",
    data: { mountId: "a" },
  });
});

Deno.test("upcast refuses a record of a newer version and a version with no upcaster", () => {
  assert.throws(
    () => upcast({ version: 1, upcasters: [] }, record(2, "volume.remove", {})),
    (error: unknown) =>
      error instanceof RecordSchemaError && error.seq === 9 &&
      /written by a newer Berth \(machine version 2; this one knows up to 1\)/.test(error.message),
  );
  assert.throws(
    () => upcast({ version: 2, upcasters: [] }, record(1, "volume.remove", {})),
    /no upcaster from machine version 1 to 2/,
  );
});

Deno.test("replay refuses a log record written by a newer machine version", () => {
  assert.throws(
    () => replay([{ ...record(2, "volume.create", { opts: {} }), seq: 1 }]),
    /Record 1 \(volume\/db\): written by a newer Berth/,
  );
});

Deno.test("a log written by machine version 1 replays to the same actors", async () => {
  const records: LogRecord[] = [];
  for await (const logged of readLog(join(FIXTURE, "v1"))) records.push(logged);
  assert.ok(records.length > 10 && records.every((logged) => logged.v === 1));
  const warnings: string[] = [];
  const views = [...replay(records, (message) => warnings.push(message))]
    .map(([id, snapshot]) => actorView(id, snapshot));
  assert.deepEqual(warnings, []);
  const expected = JSON.parse(await Deno.readTextFile(join(FIXTURE, "v1.expected.json")));
  assert.deepEqual(JSON.parse(JSON.stringify(views)), expected);
});
