// A persistent set of the addresses of one pool: a bitmap in chunks of 1,024 addresses. Adding or
// removing one copies one chunk (128 bytes) and the chunk table; the lowest free address skips
// full chunks. Neither grows with how many addresses are held. Pure; imports nothing.

const CHUNK_BITS = 1024;
const WORDS = CHUNK_BITS / 32;

/** Which addresses of a pool are taken. Never changed in place: each change makes a new one. */
export type AddressSet = {
  /** The first address the set covers (the pool's network address) and how many it covers. */
  readonly base: number;
  readonly size: number;
  /** Chunk i holds addresses base + 1024·i …; null while none of them is taken. */
  readonly chunks: readonly (Uint32Array | null)[];
  /** How many addresses of each chunk are taken. */
  readonly counts: readonly number[];
  readonly taken: number;
};

/** An empty set over `size` addresses from `base`. */
export function emptyAddressSet(base: number, size: number): AddressSet {
  const chunkCount = Math.ceil(size / CHUNK_BITS);
  return made(base, size, new Array(chunkCount).fill(null), new Array(chunkCount).fill(0), 0);
}

export function hasAddress(set: AddressSet, ip: number): boolean {
  const offset = ip - set.base;
  if (offset < 0 || offset >= set.size) return false;
  const chunk = set.chunks[Math.floor(offset / CHUNK_BITS)];
  if (!chunk) return false;
  const bit = offset % CHUNK_BITS;
  return (chunk[bit >>> 5]! & (1 << (bit & 31))) !== 0;
}

/** The set with `ip` taken (`present`) or free; the same set when nothing changes. */
export function withAddress(set: AddressSet, ip: number, present: boolean): AddressSet {
  const offset = ip - set.base;
  if (offset < 0 || offset >= set.size || hasAddress(set, ip) === present) return set;
  const index = Math.floor(offset / CHUNK_BITS);
  const bit = offset % CHUNK_BITS;
  const chunk = set.chunks[index]?.slice() ?? new Uint32Array(WORDS);
  chunk[bit >>> 5] = chunk[bit >>> 5]! ^ (1 << (bit & 31));
  const chunks = set.chunks.slice();
  const counts = set.counts.slice();
  const delta = present ? 1 : -1;
  counts[index] = counts[index]! + delta;
  chunks[index] = counts[index] === 0 ? null : chunk;
  return made(set.base, set.size, chunks, counts, set.taken + delta);
}

/** The lowest address in [from, to] that is not taken, or null. */
export function lowestFreeAddress(set: AddressSet, from: number, to: number): number | null {
  const first = Math.max(from - set.base, 0);
  const last = Math.min(to - set.base, set.size - 1);
  for (let index = Math.floor(first / CHUNK_BITS); index * CHUNK_BITS <= last; index++) {
    if (set.counts[index] === CHUNK_BITS) continue;
    const chunk = set.chunks[index];
    const start = Math.max(first, index * CHUNK_BITS);
    const end = Math.min(last, index * CHUNK_BITS + CHUNK_BITS - 1);
    for (let offset = start; offset <= end; offset++) {
      const bit = offset % CHUNK_BITS;
      const word = chunk ? chunk[bit >>> 5]! : 0;
      // A whole taken word is skipped at once.
      if (word === 0xffffffff && (bit & 31) === 0) {
        offset += 31;
        continue;
      }
      if ((word & (1 << (bit & 31))) === 0) return set.base + offset;
    }
  }
  return null;
}

function made(
  base: number,
  size: number,
  chunks: (Uint32Array | null)[],
  counts: number[],
  taken: number,
): AddressSet {
  const set = { base, size, chunks, counts, taken };
  // Shown as a count (the inspector, the command line); the pool's `addresses` says which.
  Object.defineProperty(set, "toJSON", { value: () => ({ taken }), enumerable: false });
  return set;
}
