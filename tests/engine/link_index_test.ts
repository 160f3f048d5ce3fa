// The link index: one holder per name, claims all or nothing, release frees only one's own.
import assert from "node:assert/strict";
import { createLinkIndex } from "../../src/engine/link_index.ts";

Deno.test("createLinkIndex gives each name one holder and claims all names or none", () => {
  const index = createLinkIndex([["network/a", ["bthb1"]], ["network/b", ["bthb1"]]]);
  assert.equal(index.holder("bthb1"), "network/a", "a log's second holder of a name loses");
  assert.equal(index.namesOf("network/b"), undefined);
  assert.equal(index.claim("endpoint/e", ["bthh1", "bthb1"]), "network/a");
  assert.equal(index.holder("bthh1"), undefined, "nothing claimed when one name is taken");
  assert.equal(index.claim("endpoint/e", ["bthh1", "bthc1"]), null);
  assert.equal(index.claim("endpoint/e", ["bthh1", "bthc1"]), null, "claiming again is fine");
  assert.deepEqual(index.namesOf("endpoint/e"), ["bthh1", "bthc1"]);
  index.release("network/b");
  assert.equal(index.holder("bthb1"), "network/a", "release frees only the actor's own names");
  index.release("network/a");
  assert.equal(index.holder("bthb1"), undefined);
  assert.equal(index.claim("network/b", ["bthb1"]), null);
});
