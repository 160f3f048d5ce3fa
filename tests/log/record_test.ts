import assert from "node:assert/strict";
import { crc32 } from "node:zlib";
import { decodeRecord, encodeRecord } from "../../src/log/record.ts";
import type { LogRecord } from "../../src/log/store.ts";

const RECORD: LogRecord = {
  seq: 7,
  at: 1_700_000_000_000,
  actor: "volume/db",
  type: "volume.mount",
  v: 1,
  data: { mountId: "é✓" },
};

Deno.test("node:zlib's crc32 (the record checksum) is IEEE's and continues a running crc", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  const bytes = new TextEncoder().encode("123456789");
  assert.equal(crc32(bytes.subarray(4), crc32(bytes.subarray(0, 4))), 0xcbf43926);
});

Deno.test("encodeRecord's checksum is the one a record written before node:zlib carries", () => {
  // Written by the table-driven CRC Berth had before: the same bytes must still verify.
  const line = '{"seq":1,"at":1,"actor":"volume/db","type":"volume.remove","v":1,"data":{},' +
    '"crc":"cace2666"}\n';
  const result = decodeRecord(new TextEncoder().encode(line), 0);
  assert.ok(result.ok, JSON.stringify(result));
});

Deno.test("encodeRecord writes one JSON line that decodeRecord reads back", () => {
  const line = encodeRecord(RECORD);
  assert.equal(line.at(-1), 0x0a);
  const parsed = JSON.parse(new TextDecoder().decode(line));
  assert.match(parsed.crc, /^[0-9a-f]{8}$/);
  const result = decodeRecord(line, 0);
  assert.deepEqual(result, { ok: true, record: RECORD, next: line.length });
});

Deno.test("decodeRecord reads a record at an offset", () => {
  const first = encodeRecord(RECORD);
  const second = encodeRecord({ ...RECORD, seq: 8 });
  const both = new Uint8Array([...first, ...second]);
  const result = decodeRecord(both, first.length);
  assert.ok(result.ok);
  assert.equal(result.record.seq, 8);
});

Deno.test("decodeRecord says torn when the bytes stop before the end of line", () => {
  const line = encodeRecord(RECORD);
  const result = decodeRecord(line.subarray(0, line.length - 5), 0);
  assert.deepEqual(result, { ok: false, reason: "record has no end of line", torn: true });
});

Deno.test("decodeRecord refuses a record whose bytes changed", () => {
  const line = encodeRecord(RECORD);
  line[20] = line[20] === 0x31 ? 0x32 : 0x31;
  const result = decodeRecord(line, 0);
  assert.deepEqual(result, { ok: false, reason: "checksum mismatch", torn: false });
});

Deno.test("decodeRecord refuses lines that are not records", () => {
  const cases: [string, string][] = [
    ["short\n", "record too short"],
    ['{"seq":1,"no":"checksum","at":"all","here":1}\n', "record has no checksum field"],
  ];
  for (const [text, reason] of cases) {
    const result = decodeRecord(new TextEncoder().encode(text), 0);
    assert.deepEqual(result, { ok: false, reason, torn: false });
  }
});

Deno.test("decodeRecord refuses a well-checksummed line of the wrong shape, saying what", () => {
  const good = { seq: 1, at: 1, actor: "volume/db", type: "volume.remove", v: 1, data: {} };
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ ...good, seq: 0 }, /seq must be a whole number from 1/],
    [{ ...good, seq: 1.5 }, /seq must be/],
    [{ ...good, at: "now" }, /at must be/],
    [{ ...good, actor: "" }, /actor must be text/],
    [{ ...good, type: 3 }, /type must be text/],
    [{ ...good, v: 0 }, /v must be/],
    [{ ...good, data: [] }, /data must be an object/],
    [{ ...good, data: null }, /data must be an object/],
  ];
  for (const [fields, reason] of cases) {
    const text = JSON.stringify(fields);
    const crc = crc32(new TextEncoder().encode(text)).toString(16).padStart(8, "0");
    const line = new TextEncoder().encode(`${text.slice(0, -1)},"crc":"${crc}"}\n`);
    const result = decodeRecord(line, 0);
    assert.equal(result.ok, false, text);
    assert.match((result as { reason: string }).reason, /^record has a bad shape: /);
    assert.match((result as { reason: string }).reason, reason, text);
  }
});
