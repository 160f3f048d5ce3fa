// Equality of data whatever its maps' prototypes. Options and other maps from the wire are
// null-prototype records (machines/wire_map.ts), so node's deepStrictEqual tells them from the
// plain objects a test writes or JSON.parse makes, although they hold the same entries.
import assert from "node:assert/strict";

/** `value` with every null-prototype record (nested in plain objects and arrays) made plain. */
function plainRecords(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plainRecords);
  if (value === null || typeof value !== "object") return value;
  const proto = Object.getPrototypeOf(value);
  if (proto !== null && proto !== Object.prototype) return value; // Maps, class instances
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    Object.defineProperty(out, key, {
      value: plainRecords((value as Record<string, unknown>)[key]),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** Asserts that `actual` and `expected` hold the same data, null-prototype records or not. */
export function assertSameData(actual: unknown, expected: unknown, message?: string) {
  const plainMaps = (v: unknown) =>
    v instanceof Map
      ? new Map([...v].map(([k, item]) => [k, plainRecords(item)]))
      : plainRecords(v);
  assert.deepEqual(plainMaps(actual), plainMaps(expected), message ?? "the same data");
}
