import assert from "node:assert/strict";
import {
  emptyAddressSet,
  hasAddress,
  lowestFreeAddress,
  withAddress,
} from "../../machines/_address_set.ts";
import {
  firstUsable,
  formatIp,
  lastUsable,
  parseCidr,
  parseIp,
  size,
} from "../../src/backends/ipam.ts";

const BASE = 0xc6120000; // 198.18.0.0

Deno.test("AddressSet adds, removes and finds the lowest free address, never in place", () => {
  const empty = emptyAddressSet(BASE, 65536);
  assert.equal(lowestFreeAddress(empty, BASE + 1, BASE + 65534), BASE + 1);
  let set = empty;
  for (let i = 1; i <= 3000; i++) set = withAddress(set, BASE + i, true);
  assert.equal(set.taken, 3000);
  assert.equal(empty.taken, 0, "the empty set is untouched");
  assert.equal(hasAddress(empty, BASE + 5), false);
  assert.equal(lowestFreeAddress(set, BASE + 1, BASE + 65534), BASE + 3001);
  const holed = withAddress(set, BASE + 2048, false);
  assert.equal(lowestFreeAddress(holed, BASE + 1, BASE + 65534), BASE + 2048);
  assert.equal(lowestFreeAddress(set, BASE + 1, BASE + 65534), BASE + 3001, "old set unchanged");
  assert.equal(withAddress(set, BASE + 7, true), set, "taking a taken address changes nothing");
  assert.equal(hasAddress(set, BASE + 70000), false);
  assert.equal(withAddress(set, BASE + 70000, true), set, "outside the pool: nothing");
  assert.deepEqual(JSON.parse(JSON.stringify({ set })), { set: { taken: 3000 } });
});

Deno.test("AddressSet says null when every address in the range is taken", () => {
  let set = emptyAddressSet(BASE, 256);
  for (let i = 1; i <= 254; i++) set = withAddress(set, BASE + i, true);
  assert.equal(lowestFreeAddress(set, BASE + 1, BASE + 254), null);
  set = withAddress(set, BASE + 254, false);
  assert.equal(lowestFreeAddress(set, BASE + 1, BASE + 254), BASE + 254);
});

Deno.test("AddressSet's lowest free agrees with a plain scan on random changes", () => {
  let set = emptyAddressSet(BASE, 4096);
  const plain = new Set<number>();
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let step = 0; step < 5000; step++) {
    const ip = BASE + 1 + Math.floor(random() * 4094);
    const present = random() < 0.7;
    set = withAddress(set, ip, present);
    if (present) plain.add(ip);
    else plain.delete(ip);
    let expected: number | null = null;
    for (let candidate = BASE + 1; candidate <= BASE + 4094; candidate++) {
      if (!plain.has(candidate)) {
        expected = candidate;
        break;
      }
    }
    assert.equal(lowestFreeAddress(set, BASE + 1, BASE + 4094), expected, `step ${step}`);
    assert.equal(set.taken, plain.size);
  }
});

Deno.test("lowest free over a pool's usable range: network, broadcast, /31 and /32", () => {
  const cases: [string, string[], string | null][] = [
    ["198.18.7.0/24", [], "198.18.7.1"],
    ["198.18.7.0/24", ["198.18.7.1", "198.18.7.2", "198.18.7.4"], "198.18.7.3"],
    ["198.18.7.0/24", ["198.18.7.0", "198.18.7.2"], "198.18.7.1"],
    ["198.18.7.4/30", ["198.18.7.5"], "198.18.7.6"],
    ["198.18.7.4/30", ["198.18.7.5", "198.18.7.6"], null],
    ["198.18.7.2/31", ["198.18.7.2"], "198.18.7.3"],
    ["198.18.7.2/31", ["198.18.7.2", "198.18.7.3"], null],
    ["198.18.7.9/32", [], "198.18.7.9"],
    ["198.18.7.9/32", ["198.18.7.9"], null],
  ];
  for (const [pool, taken, expected] of cases) {
    const cidr = parseCidr(pool);
    let set = emptyAddressSet(cidr.network, size(cidr));
    for (const address of taken) set = withAddress(set, parseIp(address), true);
    const found = lowestFreeAddress(set, firstUsable(cidr), lastUsable(cidr));
    assert.equal(found === null ? null : formatIp(found), expected, `${pool} minus ${taken}`);
  }
});
