// The JSON API's routes: path and query → a call on the inspector API. Query values are checked
// here (sequence numbers, kinds); whatever else a caller sends is only ever a Map key or a filter.
import { isKindName, type KindName } from "../../../machines/mod.ts";
import type { InspectorApi } from "../../inspect/api.ts";

/** A request the API refuses; `status` is the HTTP status. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const SEQ_REGEXP = /^\d{1,15}$/;
const SVG_REGEXP = /^\/api\/machines\/([a-z]+)\.svg$/;
const ACTOR_PREFIX = "/api/actors/";

/** Answers an API path: JSON-able data, SVG text, or null when there is no such route. */
export async function apiRoute(
  api: InspectorApi,
  path: string,
  query: URLSearchParams,
): Promise<unknown> {
  if (path === "/api/machines") return api.machines(seq(query, "at"));
  const svg = SVG_REGEXP.exec(path);
  if (svg) return api.machineSvg(kind(svg[1]!));
  if (path === "/api/actors") {
    const kindText = query.get("kind");
    return await api.actors({
      ...(kindText ? { kind: kind(kindText) } : {}),
      ...optional("state", query.get("state")),
      ...optional("name", query.get("name")),
      ...optional("at", seq(query, "at")),
    });
  }
  if (path.startsWith(ACTOR_PREFIX)) {
    const id = decoded(path.slice(ACTOR_PREFIX.length));
    const slash = id.indexOf("/");
    if (slash === -1) throw new ApiError(400, `Actor "${id}" must be written kind/name`);
    kind(id.slice(0, slash));
    const answer = await api.actor(id, seq(query, "at"));
    if (answer.entries.length === 0) {
      throw new ApiError(
        404,
        `Actor "${id}" has no event in the log${
          answer.at < answer.lastSeq ? ` up to ${answer.at}` : ""
        }`,
      );
    }
    return answer;
  }
  if (path === "/api/log") {
    // As of `at`, the log ends there: `at` bounds `to` like on every other route.
    const to = seq(query, "to");
    const at = seq(query, "at");
    const end = to === undefined ? at : at === undefined ? to : Math.min(to, at);
    return await api.log({
      ...optional("from", seq(query, "from")),
      ...optional("to", end),
      ...optional("actor", query.get("actor")),
      ...optional("type", query.get("type")),
      ...optional("limit", seq(query, "limit")),
    });
  }
  return null;
}

function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new ApiError(400, "The path is not valid percent-encoding");
  }
}

function optional<K extends string, V>(key: K, value: V | null | undefined) {
  return (value === null || value === undefined || value === "" ? {} : { [key]: value }) as
    | Record<K, V>
    | Record<never, never>;
}

function seq(query: URLSearchParams, name: string): number | undefined {
  const value = query.get(name);
  if (value === null || value === "") return undefined;
  if (!SEQ_REGEXP.test(value)) {
    throw new ApiError(400, `Query "${name}" must be a sequence number, not "${value}"`);
  }
  return Number(value);
}

function kind(text: string): KindName {
  if (!isKindName(text)) {
    throw new ApiError(400, `Kind "${text}" is not one of volume, network, endpoint, pool`);
  }
  return text;
}
