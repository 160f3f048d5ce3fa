// Maps that arrive from the wire (options, labels): null-prototype records, so that a key named
// "__proto__", "constructor" or "toString" is data like any other (DESIGN rule 8), and bounded, so
// that a request cannot make Berth hold, log or echo a million of them. Pure: zod only.
import { z } from "zod";

/** More options than any driver reads; a request with more is refused, not listed. */
export const MAX_MAP_ENTRIES = 128;

/** How many characters of a key or name an error message repeats. */
const QUOTE_MAX = 64;

/** A record with no prototype: only what was put in it answers. */
export type WireMap<T> = Record<string, T>;

/** An empty WireMap. */
export function emptyMap<T>(): WireMap<T> {
  return Object.create(null);
}

/** `names` quoted, the first three only, then how many more: a message that stays short. */
export function someNames(names: readonly string[]): string {
  const shown = names.slice(0, 3).map(quoted).join(", ");
  return names.length > 3 ? `${shown} and ${names.length - 3} more` : shown;
}

/** A WireMap of `entries`; "__proto__" becomes an own key, never the prototype. */
export function mapOf<T>(entries: Iterable<readonly [string, T]>): WireMap<T> {
  const out = emptyMap<T>();
  for (const [key, value] of entries) out[key] = value;
  return out;
}

/** `text` as JSON-quoted, cut to 64 characters, for a message that must not echo unbounded input. */
export function quoted(text: string): string {
  return JSON.stringify(text.length > QUOTE_MAX ? `${text.slice(0, QUOTE_MAX)}…` : text);
}

/**
 * A JSON object whose values match `value`, as a WireMap of at most MAX_MAP_ENTRIES entries.
 * Every own key counts, "__proto__" included (zod's `z.record` drops it). The first bad value is
 * named; the rest are not listed.
 */
export function wireMap<T>(value: z.ZodType<T>) {
  return z.unknown().transform((input, ctx): WireMap<T> => {
    if (input === null || typeof input !== "object" || Array.isArray(input)) {
      ctx.addIssue({ code: "custom", message: "must be a map" });
      return z.NEVER;
    }
    const keys = Object.keys(input);
    if (keys.length > MAX_MAP_ENTRIES) {
      ctx.addIssue({
        code: "custom",
        message: `${keys.length} entries; at most ${MAX_MAP_ENTRIES}`,
      });
      return z.NEVER;
    }
    const out = emptyMap<T>();
    for (const key of keys) {
      const item = value.safeParse((input as Record<string, unknown>)[key]);
      if (!item.success) {
        const message = item.error.issues[0]?.message ?? "is invalid";
        ctx.addIssue({ code: "custom", message, path: [key] });
        return z.NEVER;
      }
      out[key] = item.data;
    }
    return out;
  });
}

/** Strings to strings: options as Docker sends them (`-o key=value`). */
export const StringMap = wireMap(z.string());

/** The same where Docker sends null or nothing for "no options": both become an empty map. */
export const OptionalStringMap = z.preprocess((input) => input ?? emptyMap(), StringMap);
