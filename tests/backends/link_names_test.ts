// Link names from ids: a fixed shape, and for twin ids (the same first 11 hex chars) a first
// choice they share and later choices they do not.
import assert from "node:assert/strict";
import {
  BERTH_LINK_PREFIX,
  bridgeName,
  bridgeNames,
  vethNameChoices,
  vethNames,
} from "../../src/backends/link_names.ts";

const TWINS = [`abcdef01234${"1".repeat(53)}`, `abcdef01234${"2".repeat(53)}`] as const;

Deno.test("bridgeNames and vethNameChoices slide along the id, 15-char bth names each", () => {
  const [a, b] = TWINS.map(bridgeNames) as [string[], string[]];
  assert.equal(a.length, 54);
  assert.deepEqual(a.slice(0, 2), ["bthbabcdef01234", "bthbbcdef012341"]);
  assert.equal(a[0], b[0], "twins share the first choice");
  assert.notEqual(a[1], b[1], "and not the next");
  assert.equal(bridgeName(TWINS[0]), a[0]);
  const pairs = vethNameChoices(TWINS[1]);
  assert.deepEqual(pairs[1], { host: "bthhbcdef012342", peer: "bthcbcdef012342" });
  assert.deepEqual(vethNames(TWINS[1]), pairs[0]);
  for (const name of [...a, ...pairs.flatMap(({ host, peer }) => [host, peer])]) {
    assert.equal(name.length, 15, name);
    assert.ok(name.startsWith(BERTH_LINK_PREFIX), name);
  }
  assert.deepEqual(bridgeNames("0123456789a"), ["bthb0123456789a"]);
  assert.throws(() => bridgeNames("0123456789"), /not a lowercase hex id/);
});
