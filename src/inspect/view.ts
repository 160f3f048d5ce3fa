// How an actor is shown to an operator (inspector page, JSON API, command line): its id, kind,
// state and context as plain JSON, with every option value whose name looks secret masked.
import { isMap } from "immutable";
import type { AnyMachineSnapshot } from "xstate";

/** An actor as the inspector and the command line show it. */
export type ActorView = {
  id: string;
  kind: string;
  name: string;
  state: string;
  /** xstate's status: "active", or "done" once the actor reached its final state. */
  status: string;
  context: unknown;
};

export const MASK = "********";

/** Option names that look like they hold a secret: their values are never shown. */
export const SECRET_KEY_REGEXP = /password|passwd|secret|token|key|credential/i;

/** Containers of operator-given options, as machines and Docker name them. */
const OPTION_FIELDS = new Set(["opts", "options", "Opts", "Options"]);

export function actorView(id: string, snapshot: AnyMachineSnapshot): ActorView {
  const slash = id.indexOf("/");
  return {
    id,
    kind: id.slice(0, slash),
    name: id.slice(slash + 1),
    state: stateName(snapshot),
    status: snapshot.status,
    context: maskSecrets(snapshot.context),
  };
}

/** The state value as one string: `mounted`, or `a.b` for nested states. */
export function stateName(snapshot: Pick<AnyMachineSnapshot, "value">): string {
  return flatten(snapshot.value);
}

function flatten(value: unknown): string {
  if (typeof value === "string") return value;
  if (value && typeof value === "object") {
    return Object.entries(value).map(([key, inner]) => `${key}.${flatten(inner)}`).join(",");
  }
  return String(value);
}

/**
 * A copy of `value` in which every entry of an options record (`opts`, `options`) whose key looks
 * secret has its value replaced by MASK. Only option records: a mount ID such as "monkey" is a
 * key of `mounts` and is shown as it is.
 */
export function maskSecrets(value: unknown, inOptions = false): unknown {
  if (Array.isArray(value)) return value.map((item) => maskSecrets(item, inOptions));
  if (value === null || typeof value !== "object") return value;
  // What a value says it looks like in JSON (an address bitmap: its count) is what is shown.
  if (!isMap(value) && typeof (value as { toJSON?: unknown }).toJSON === "function") {
    return maskSecrets((value as { toJSON(): unknown }).toJSON(), inOptions);
  }
  const out: Record<string, unknown> = Object.create(null);
  // A persistent map (a volume's mounts) shows as a plain object of its entries.
  const entries = isMap(value) ? [...value.entries()] : Object.entries(value);
  for (const [key, inner] of entries as [string, unknown][]) {
    if (inOptions && SECRET_KEY_REGEXP.test(key)) out[key] = MASK;
    else out[key] = maskSecrets(inner, inOptions || OPTION_FIELDS.has(key));
  }
  return out;
}
