import assert from "node:assert/strict";
import {
  type Cidr,
  contains,
  DEFAULT_POOL_PREFIX,
  DEFAULT_POOL_RANGE,
  firstUsable,
  formatCidr,
  formatIp,
  IpamError,
  isUsable,
  lastUsable,
  nextFreePool,
  overlaps,
  parseCidr,
  parseIp,
  size,
  withPrefix,
} from "../../src/backends/ipam.ts";

const ip = parseIp;
const net = parseCidr;
// 0.0.0.0/0 as plain numbers: edge cases only, never a pool Berth would hand out.
const EVERYTHING: Cidr = { network: 0, prefix: 0 };

Deno.test("parseIp and formatIp round-trip dotted quads", () => {
  const cases: [string, number][] = [
    ["0.0.0.0", 0],
    ["255.255.255.255", 0xffffffff],
    ["198.18.0.1", 0xc6120001],
    ["198.19.255.254", 0xc613fffe],
  ];
  for (const [text, value] of cases) {
    assert.equal(parseIp(text), value, text);
    assert.equal(formatIp(value), text);
  }
});

Deno.test("parseIp refuses anything but a strict IPv4 dotted quad", () => {
  const refusals: [string, string][] = [
    ["", "expected four decimal parts like 198.18.0.1"],
    ["1.2.3", "expected four decimal parts like 198.18.0.1"],
    ["198.18.0.1.", "expected four decimal parts like 198.18.0.1"],
    [" 198.18.0.1", "expected four decimal parts like 198.18.0.1"],
    ["a.b.c.d", "expected four decimal parts like 198.18.0.1"],
    ["198.18.0.+1", "expected four decimal parts like 198.18.0.1"],
    ["256.1.1.1", "each part must be 0 to 255"],
    ["198.18.0.1000", "expected four decimal parts like 198.18.0.1"],
    ["01.2.3.4", "leading zeros are not allowed"],
    ["198.18.00.1", "leading zeros are not allowed"],
    ["fd00::1", "IPv6 is not supported"],
  ];
  for (const [text, detail] of refusals) {
    assert.throws(() => parseIp(text), {
      name: "IpamError",
      message: `Invalid IP address "${text}": ${detail}`,
    });
  }
  assert.throws(() => parseIp("256.1.1.1"), IpamError);
});

Deno.test("parseCidr and formatCidr round-trip canonical subnets", () => {
  const cases: [string, Cidr][] = [
    ["198.18.0.0/15", { network: 0xc6120000, prefix: 15 }],
    ["198.18.7.0/24", { network: 0xc6120700, prefix: 24 }],
    ["198.18.7.4/30", { network: 0xc6120704, prefix: 30 }],
    ["198.18.7.2/31", { network: 0xc6120702, prefix: 31 }],
    ["198.18.7.9/32", { network: 0xc6120709, prefix: 32 }],
  ];
  for (const [text, cidr] of cases) {
    assert.deepEqual(parseCidr(text), cidr, text);
    assert.equal(formatCidr(cidr), text);
  }
  assert.equal(formatCidr(EVERYTHING), "0.0.0.0/0");
});

Deno.test("parseCidr clears host bits to the network address", () => {
  const cases: [string, string][] = [
    ["198.18.7.5/24", "198.18.7.0/24"],
    ["198.19.255.255/15", "198.18.0.0/15"],
    ["198.18.7.3/31", "198.18.7.2/31"],
    ["198.18.7.255/25", "198.18.7.128/25"],
  ];
  for (const [text, canonical] of cases) {
    const cidr = parseCidr(text);
    assert.equal(formatCidr(cidr), canonical, text);
    assert.ok(cidr.network >= 0, "network stays unsigned");
  }
  assert.deepEqual(parseCidr("198.18.7.5/0"), EVERYTHING);
});

Deno.test("parseCidr refuses anything but a.b.c.d/n and names the text", () => {
  const refusals: [string, string][] = [
    ["", "expected an address and a prefix length like 198.18.7.0/24"],
    ["1.2.3", "expected an address and a prefix length like 198.18.7.0/24"],
    ["198.18.7.0", "expected an address and a prefix length like 198.18.7.0/24"],
    ["198.18.7.0/24/1", "expected an address and a prefix length like 198.18.7.0/24"],
    ["1.2.3/24", "expected four decimal parts like 198.18.0.1"],
    ["a.b.c.d/24", "expected four decimal parts like 198.18.0.1"],
    ["256.1.1.1/24", "each part must be 0 to 255"],
    ["01.2.3.4/24", "leading zeros are not allowed"],
    ["1.2.3.4/33", "prefix length must be 0 to 32"],
    ["198.18.7.0/33", "prefix length must be 0 to 32"],
    ["1.2.3.4/-1", "prefix length must be 0 to 32"],
    ["198.18.7.0/", "prefix length must be 0 to 32"],
    ["198.18.7.0/024", "prefix length must be 0 to 32"],
    ["198.18.7.0/2x", "prefix length must be 0 to 32"],
    ["fd00::/64", "IPv6 is not supported"],
    ["::ffff:198.18.7.0/120", "IPv6 is not supported"],
  ];
  for (const [text, detail] of refusals) {
    assert.throws(() => parseCidr(text), {
      name: "IpamError",
      message: `Invalid subnet "${text}": ${detail}`,
    });
  }
});

Deno.test("withPrefix writes an address with its pool's prefix length", () => {
  assert.equal(withPrefix(ip("198.18.7.2"), 24), "198.18.7.2/24");
  assert.equal(withPrefix(ip("198.19.0.1"), 15), "198.19.0.1/15");
});

Deno.test("size, contains, firstUsable, lastUsable and isUsable follow the /31 and /32 rules", () => {
  const cases: { pool: Cidr; size: number; first: number; last: number }[] = [
    { pool: net("198.18.7.0/24"), size: 256, first: ip("198.18.7.1"), last: ip("198.18.7.254") },
    { pool: net("198.18.7.4/30"), size: 4, first: ip("198.18.7.5"), last: ip("198.18.7.6") },
    { pool: net("198.18.7.2/31"), size: 2, first: ip("198.18.7.2"), last: ip("198.18.7.3") },
    { pool: net("198.18.7.9/32"), size: 1, first: ip("198.18.7.9"), last: ip("198.18.7.9") },
    { pool: EVERYTHING, size: 2 ** 32, first: 1, last: 0xfffffffe },
  ];
  for (const { pool, size: count, first, last } of cases) {
    const label = formatCidr(pool);
    const broadcast = pool.network + count - 1;
    assert.equal(size(pool), count, label);
    assert.equal(firstUsable(pool), first, label);
    assert.equal(lastUsable(pool), last, label);
    assert.ok(contains(pool, pool.network) && contains(pool, broadcast), label);
    assert.ok(!contains(pool, pool.network - 1) && !contains(pool, broadcast + 1), label);
    assert.ok(isUsable(pool, first) && isUsable(pool, last), label);
    assert.equal(isUsable(pool, pool.network), pool.prefix > 30, label);
    assert.equal(isUsable(pool, broadcast), pool.prefix > 30, label);
    assert.ok(!isUsable(pool, broadcast + 1), label);
  }
});

Deno.test("overlaps holds in both directions for nested pools and not for disjoint ones", () => {
  const cases: [string, string, boolean][] = [
    ["198.18.0.0/15", "198.18.7.0/24", true],
    ["198.18.7.0/24", "198.18.7.0/24", true],
    ["198.18.7.0/24", "198.18.7.128/25", true],
    ["198.18.7.0/24", "198.18.7.255/32", true],
    ["198.18.7.0/24", "198.18.9.0/24", false],
    ["198.18.7.0/24", "198.18.8.0/24", false],
    ["198.18.7.0/25", "198.18.7.128/25", false],
    ["198.18.0.0/16", "198.19.0.0/16", false],
  ];
  for (const [a, b, expected] of cases) {
    assert.equal(overlaps(net(a), net(b)), expected, `${a} vs ${b}`);
    assert.equal(overlaps(net(b), net(a)), expected, `${b} vs ${a}`);
  }
  assert.ok(overlaps(EVERYTHING, net("198.19.255.255/32")));
  assert.ok(overlaps(net("198.19.255.255/32"), EVERYTHING));
});

Deno.test("nextFreePool picks the lowest block clear of taken pools of any size", () => {
  const range = net(DEFAULT_POOL_RANGE);
  const cases: [string[], string | null][] = [
    [[], "198.18.0.0/24"],
    [["198.18.0.0/20"], "198.18.16.0/24"],
    [["198.18.0.128/25"], "198.18.1.0/24"],
    [["198.18.0.5/32"], "198.18.1.0/24"],
    [["198.18.4.0/22", "198.18.2.64/26", "198.18.0.0/23"], "198.18.3.0/24"],
    [["198.18.1.0/24", "198.18.0.0/16", "198.18.0.0/24"], "198.19.0.0/24"],
    [["198.18.0.0/24", "198.18.2.0/24"], "198.18.1.0/24"],
    [["198.18.0.0/15"], null],
  ];
  for (const [taken, expected] of cases) {
    const found = nextFreePool(range, DEFAULT_POOL_PREFIX, taken.map(net));
    assert.equal(found === null ? null : formatCidr(found), expected, `taken ${taken}`);
  }
  assert.equal(nextFreePool(range, DEFAULT_POOL_PREFIX, [EVERYTHING]), null);
});

Deno.test("nextFreePool ignores taken pools outside the range", () => {
  const range = net("198.18.0.0/16");
  const outside = [net("198.19.0.0/16")];
  assert.equal(formatCidr(nextFreePool(range, 24, outside) ?? range), "198.18.0.0/24");
});

Deno.test("nextFreePool hands out a different pool per call until the range is exhausted", () => {
  const range = net("198.18.0.0/23");
  const taken: Cidr[] = [];
  const handed: string[] = [];
  for (let pool = nextFreePool(range, 24, taken); pool; pool = nextFreePool(range, 24, taken)) {
    taken.push(pool);
    handed.push(formatCidr(pool));
  }
  assert.deepEqual(handed, ["198.18.0.0/24", "198.18.1.0/24"]);
  assert.equal(nextFreePool(range, 24, taken), null);
});

Deno.test("nextFreePool ends at the top of 0.0.0.0/0 without wrapping", () => {
  const halves: Cidr[] = [{ network: 0, prefix: 1 }, { network: 2 ** 31, prefix: 1 }];
  assert.equal(nextFreePool(EVERYTHING, 8, halves), null);
  const top = nextFreePool(EVERYTHING, 8, halves.slice(0, 1));
  assert.deepEqual(top, { network: 2 ** 31, prefix: 8 });
});

Deno.test("nextFreePool refuses a prefix length that does not fit the range", () => {
  const range = net(DEFAULT_POOL_RANGE);
  for (const prefix of [14, 33, 24.5]) {
    assert.throws(() => nextFreePool(range, prefix, []), {
      name: "IpamError",
      message: `Cannot split range "198.18.0.0/15" into /${prefix} pools: ` +
        "prefix length must be 15 to 32",
    });
  }
});

Deno.test("nextFreePool finds the 401st /24 of 198.18.0.0/15 past 400 taken ones", () => {
  const range = net(DEFAULT_POOL_RANGE);
  // Reverse order, so the search cannot lean on the caller sorting.
  const taken = Array.from({ length: 400 }, (_, i) => ({
    network: range.network + (399 - i) * 256,
    prefix: DEFAULT_POOL_PREFIX,
  }));
  const found = nextFreePool(range, DEFAULT_POOL_PREFIX, taken);
  assert.equal(formatCidr(found ?? range), "198.19.144.0/24");
});
