// One line per answered plugin call, for the operator: the method, the entity as the user knows
// it (a volume by the name they typed, a network by the short id `docker network ls` shows, as
// dockerd never sends its name), the outcome in the words dockerd shows, and the time taken.
// Calls that change state and refusals are said at info; calls that only read at debug.
import {
  EffectFailedError,
  IllegalStateError,
  InvalidRequestError,
  NotFoundError,
} from "../../engine/errors.ts";

export type CallLevel = "ERROR" | "WARN" | "INFO" | "DEBUG";

/** What the log says of one call. */
export type CallLine = {
  level: CallLevel;
  message: string;
  fields: {
    method: string;
    entity: string;
    outcome: "ok" | "refused" | "failed";
    ms: number;
    error?: string;
  };
};

/** Methods that change state; every other one only reads (or is the handshake). */
const CHANGES = new Set([
  "VolumeDriver.Create",
  "VolumeDriver.Remove",
  "VolumeDriver.Mount",
  "VolumeDriver.Unmount",
  "NetworkDriver.CreateNetwork",
  "NetworkDriver.DeleteNetwork",
  "NetworkDriver.CreateEndpoint",
  "NetworkDriver.DeleteEndpoint",
  "NetworkDriver.Join",
  "NetworkDriver.Leave",
  "NetworkDriver.ProgramExternalConnectivity",
  "NetworkDriver.RevokeExternalConnectivity",
  "IpamDriver.RequestPool",
  "IpamDriver.ReleasePool",
  "IpamDriver.RequestAddress",
  "IpamDriver.ReleaseAddress",
]);

/** Longest piece of caller input a line repeats. */
const SHOWN_CHARS = 64;

/** A string field of the request, or null. */
function text(body: unknown, key: string): string | null {
  if (typeof body !== "object" || body === null || !Object.hasOwn(body, key)) return null;
  const value = (body as Record<string, unknown>)[key];
  return typeof value === "string" && value !== "" ? value : null;
}

/** Caller input as a line shows it: quoted, cut to SHOWN_CHARS. */
function shown(value: string): string {
  return JSON.stringify(value.length > SHOWN_CHARS ? `${value.slice(0, SHOWN_CHARS)}…` : value);
}

/** A docker id as `docker … ls` shows it: its first 12 characters (anything else quoted). */
function shortId(value: string): string {
  return /^[0-9a-f]{12,64}$/.test(value) ? value.slice(0, 12) : shown(value);
}

/** The entity a call is about, in the words a user of `docker` would recognise. */
export function entityOf(method: string, body: unknown): string {
  const iface = method.slice(0, method.indexOf("."));
  const get = (key: string) => text(body, key);
  if (iface === "VolumeDriver") {
    const name = get("Name");
    const id = get("ID");
    return name === null ? "" : `volume ${shown(name)}` + (id ? ` (mount ${shortId(id)})` : "");
  }
  if (iface === "NetworkDriver") {
    const network = get("NetworkID");
    const endpoint = get("EndpointID");
    if (network === null) return "";
    return (endpoint === null ? "" : `endpoint ${shortId(endpoint)} of `) +
      `network ${shortId(network)}`;
  }
  if (iface === "IpamDriver") {
    const pool = get("PoolID") ?? get("Pool");
    const address = get("Address");
    const inPool = pool === null ? "" : `pool ${shown(pool)}`;
    return address === null ? inPool : `address ${shown(address)}${pool ? ` in ${inPool}` : ""}`;
  }
  return "";
}

/** How loud the line of a call is: see the header. */
export function callLevel(method: string, error: unknown): CallLevel {
  if (error === null) return CHANGES.has(method) ? "INFO" : "DEBUG";
  if (isRefusal(error)) return "INFO";
  // A failed effect is the backend's; an unavailable log or a fault of Berth's is the operator's.
  return error instanceof EffectFailedError ? "WARN" : "ERROR";
}

/** The caller's to act on: a bad request, an unknown entity, a state that does not allow it. */
function isRefusal(error: unknown): boolean {
  return typeof error === "string" || error instanceof InvalidRequestError ||
    error instanceof NotFoundError || error instanceof IllegalStateError;
}

/** The line for a call to `method` answered after `seconds`; `error` is what refused it. */
export function callLine(
  method: string,
  body: unknown,
  error: unknown,
  seconds: number,
): CallLine {
  const ms = Math.round(seconds * 1e4) / 10;
  const entity = entityOf(method, body);
  const about = `${method}${entity ? ` ${entity}` : ""}`;
  const level = callLevel(method, error);
  if (error === null) {
    return {
      level,
      message: `${about}: ok in ${ms} ms`,
      fields: { method, entity, outcome: "ok", ms },
    };
  }
  const text = error instanceof Error ? error.message : String(error);
  const outcome = isRefusal(error) ? "refused" : "failed";
  return {
    level,
    message: `${about}: ${outcome} in ${ms} ms: ${text}`,
    fields: { method, entity, outcome, ms, error: text },
  };
}
