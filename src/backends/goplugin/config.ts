// The backends file (`--config FILE`): which go-plugin volume backends Berth may launch, by name.
// { "backends": { "<name>": { "command": ["/path/bin", "arg"], "env": { "K": "V" } } } }
// Checked with zod before anything runs; every error names the key it is about.
import { z } from "zod";
import { emptyMap, StringMap } from "../../../machines/wire_map.ts";

const BACKEND_NAME = /^[a-z][a-z0-9_-]{0,62}$/;

const Backend = z.strictObject({
  command: z.array(z.string().min(1, "must not be empty")).min(1, "must name a program"),
  env: StringMap.optional(),
});

const BackendsFile = z.strictObject({
  backends: z.unknown().pipe(StringMapOf(Backend)),
});

/** A record keyed by backend name; names must be short lower-case words (`-o backend=NAME`). */
function StringMapOf<T>(value: z.ZodType<T>) {
  return z.unknown().transform((input, ctx): Map<string, T> => {
    if (input === null || typeof input !== "object" || Array.isArray(input)) {
      ctx.addIssue({ code: "custom", message: "must be a map of backend names" });
      return z.NEVER;
    }
    const out = new Map<string, T>();
    for (const name of Object.keys(input)) {
      if (!BACKEND_NAME.test(name)) {
        ctx.addIssue({
          code: "custom",
          path: [name],
          message: `is not a backend name (${BACKEND_NAME.source})`,
        });
        return z.NEVER;
      }
      const parsed = value.safeParse((input as Record<string, unknown>)[name]);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) {
          const message = issue.code === "unrecognized_keys"
            ? unknownKeys(issue.keys)
            : issue.message;
          ctx.addIssue({ code: "custom", path: [name, ...issue.path.map(String)], message });
        }
        return z.NEVER;
      }
      out.set(name, parsed.data);
    }
    return out;
  });
}

export type BackendSpec = { command: string[]; env: Record<string, string> };

/** A backends file that cannot be used; the message names the file and the key. */
export class BackendsConfigError extends Error {
  override name = "BackendsConfigError";
}

/** The backends declared in `text` (the contents of `file`), or BackendsConfigError. */
export function parseBackendsConfig(text: string, file: string): Map<string, BackendSpec> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new BackendsConfigError(`${file} is not JSON: ${(error as Error).message}`);
  }
  const parsed = BackendsFile.safeParse(json);
  if (!parsed.success) {
    // A misspelt key says more than the missing key it stands for: it comes first.
    const { issues } = parsed.error;
    const issue = issues.find((each) => each.code === "unrecognized_keys") ?? issues[0]!;
    const key = issue.path.length === 0 ? "the top level" : issue.path.map(String).join(".");
    const message = issue.code === "unrecognized_keys" ? unknownKeys(issue.keys) : issue.message;
    throw new BackendsConfigError(`${file}: ${key}: ${message}`);
  }
  return new Map(
    [...parsed.data.backends].map((
      [name, spec],
    ) => [name, { command: spec.command, env: spec.env ?? emptyMap<string>() }]),
  );
}

function unknownKeys(keys: readonly string[]): string {
  return `unknown key${keys.length > 1 ? "s" : ""} ${
    keys.map((key) => JSON.stringify(key)).join(", ")
  }`;
}

/** The backends declared in `file`; BackendsConfigError when it cannot be read or is wrong. */
export function readBackendsConfig(file: string): Map<string, BackendSpec> {
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (error) {
    throw new BackendsConfigError(`Cannot read --config ${file}: ${(error as Error).message}`);
  }
  return parseBackendsConfig(text, file);
}
