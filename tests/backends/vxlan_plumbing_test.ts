import assert from "node:assert/strict";
import { macFromAddress, vxlanId, vxlanName } from "../../src/backends/vxlan_plumbing.ts";

Deno.test("a network's VXLAN device: bthv + 11 hex of its id, 15 characters", () => {
  const name = vxlanName("4e7a110123456789abcdef".padEnd(64, "0"));
  assert.equal(name, "bthv4e7a1101234");
  assert.equal(name.length, 15);
});

Deno.test("a network's VNI: the first 24 bits of its id, never 0", () => {
  assert.equal(vxlanId("4e7a11".padEnd(64, "f")), 0x4e7a11);
  assert.equal(vxlanId("000000".padEnd(64, "f")), 1);
});

Deno.test("a MAC from an IPv4 address, as Docker's bridge makes one", () => {
  assert.equal(macFromAddress("198.18.41.3/24"), "02:42:c6:12:29:03");
});
