// IPv4 arithmetic for the IPAM driver: parsing, pool membership, free address and free pool search.
// Pure functions over unsigned 32-bit numbers; imports nothing, does no I/O, never sees an event.

/** An address, subnet or pool request that IPv4 arithmetic refuses; the message quotes the input. */
export class IpamError extends Error {
  override name = "IpamError";
}

/** An IPv4 network: `network` is the unsigned 32-bit address with all host bits clear. */
export type Cidr = { network: number; prefix: number };

/** Where Berth carves pools from when RequestPool names none (RFC 2544 benchmarking space). */
export const DEFAULT_POOL_RANGE = "198.18.0.0/15";

/** Prefix length of the pools Berth hands out from DEFAULT_POOL_RANGE. */
export const DEFAULT_POOL_PREFIX = 24;

const PART_REGEXP = /^\d{1,3}$/;
const PREFIX_REGEXP = /^(0|[1-9]\d?)$/;

/** Parses a strict dotted quad ("198.18.0.1") into an unsigned 32-bit number. */
export function parseIp(text: string): number {
  const result = readIp(text);
  if (typeof result === "string") throw new IpamError(`Invalid IP address "${text}": ${result}`);
  return result;
}

/** Formats an unsigned 32-bit number as a dotted quad. */
export function formatIp(ip: number): string {
  const n = ip >>> 0;
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/**
 * Parses "a.b.c.d/n" into its network, clearing any host bits ("198.18.7.5/24" → 198.18.7.0/24).
 * Go's netip.ParsePrefix also accepts host bits; we keep only the masked form because pools are
 * stored and compared as networks, and such a subnet can only mean one network.
 */
export function parseCidr(text: string): Cidr {
  const fail = (detail: string) => new IpamError(`Invalid subnet "${text}": ${detail}`);
  if (text.includes(":")) throw fail("IPv6 is not supported");
  const parts = text.split("/");
  if (parts.length !== 2) throw fail("expected an address and a prefix length like 198.18.7.0/24");
  const [address = "", length = ""] = parts;
  const ip = readIp(address);
  if (typeof ip === "string") throw fail(ip);
  const prefix = Number(length);
  if (!PREFIX_REGEXP.test(length) || prefix > 32) throw fail("prefix length must be 0 to 32");
  return { network: (ip & mask(prefix)) >>> 0, prefix };
}

/** Formats a network as "198.18.7.0/24". */
export function formatCidr(cidr: Cidr): string {
  return `${formatIp(cidr.network)}/${cidr.prefix}`;
}

/** Formats an address with its pool's prefix length ("198.18.7.2/24"), as RequestAddress replies. */
export function withPrefix(ip: number, prefix: number): string {
  return `${formatIp(ip)}/${prefix}`;
}

/** Number of addresses in the network, usable or not. */
export function size(cidr: Cidr): number {
  return 2 ** (32 - cidr.prefix);
}

/** Whether the address lies in the network, network and broadcast addresses included. */
export function contains(cidr: Cidr, ip: number): boolean {
  return ip >= cidr.network && ip <= lastOf(cidr);
}

/** Whether two networks share any address; either may be nested in the other. */
export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.network <= lastOf(b) && b.network <= lastOf(a);
}

/** Lowest address a host may hold: network address excluded up to /30, kept for /31 and /32. */
export function firstUsable(cidr: Cidr): number {
  return cidr.prefix <= 30 ? cidr.network + 1 : cidr.network;
}

/** Highest address a host may hold: broadcast excluded up to /30, kept for /31 (RFC 3021) and /32. */
export function lastUsable(cidr: Cidr): number {
  return cidr.prefix <= 30 ? lastOf(cidr) - 1 : lastOf(cidr);
}

/** Whether a host may hold the address: inside the pool and not its network or broadcast address. */
export function isUsable(cidr: Cidr, ip: number): boolean {
  return ip >= firstUsable(cidr) && ip <= lastUsable(cidr);
}

/**
 * Lowest block of length `prefix` inside `range` that overlaps none of `taken`, or null when none is
 * left.
 */
export function nextFreePool(range: Cidr, prefix: number, taken: readonly Cidr[]): Cidr | null {
  if (!Number.isInteger(prefix) || prefix < range.prefix || prefix > 32) {
    throw new IpamError(
      `Cannot split range "${formatCidr(range)}" into /${prefix} pools: ` +
        `prefix length must be ${range.prefix} to 32`,
    );
  }
  const block = 2 ** (32 - prefix);
  const rangeLast = lastOf(range);
  const busy = mergeSpans(taken.filter((cidr) => overlaps(cidr, range)));
  let next = 0;
  let start = range.network;
  // Plain numbers, not uint32: `start` may step to 2 ** 32 past the top of 0.0.0.0/0 and end the loop.
  while (start + block - 1 <= rangeLast) {
    let span = busy[next];
    while (span !== undefined && span[1] < start) span = busy[++next];
    if (span !== undefined && span[0] <= start + block - 1) {
      // Jump past the whole busy span instead of testing each block it covers.
      start = Math.ceil((span[1] + 1) / block) * block;
      continue;
    }
    return { network: start, prefix };
  }
  return null;
}

function readIp(text: string): number | string {
  if (text.includes(":")) return "IPv6 is not supported";
  const parts = text.split(".");
  if (parts.length !== 4) return "expected four decimal parts like 198.18.0.1";
  let ip = 0;
  for (const part of parts) {
    if (!PART_REGEXP.test(part)) return "expected four decimal parts like 198.18.0.1";
    // "010" reads as octal in some parsers and decimal in others; refuse rather than guess.
    if (part.length > 1 && part.startsWith("0")) return "leading zeros are not allowed";
    const value = Number(part);
    if (value > 255) return "each part must be 0 to 255";
    ip = ip * 256 + value;
  }
  return ip;
}

function mask(prefix: number): number {
  // `x << 32` shifts by 0 in JavaScript, so /0 needs its own case.
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

function lastOf(cidr: Cidr): number {
  return cidr.network + size(cidr) - 1;
}

/** Sorted, disjoint [first, last] spans covering every address of `cidrs`. */
function mergeSpans(cidrs: readonly Cidr[]): [number, number][] {
  const sorted = cidrs.map((c): [number, number] => [c.network, lastOf(c)])
    .sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const span of sorted) {
    const top = merged.at(-1);
    if (top !== undefined && span[0] <= top[1] + 1) top[1] = Math.max(top[1], span[1]);
    else merged.push(span);
  }
  return merged;
}
