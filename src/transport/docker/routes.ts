// Docker routes are data: path → handler. One dispatch function parses the body, runs the
// handler and maps the outcome; anything else is a 404.
import type { z } from "zod";
import { InvalidRequestError } from "../../engine/errors.ts";
import { quoted } from "../../../machines/wire_map.ts";
import { wantsErrorKey } from "../../protocol/docker_plugin.ts";
import type { HttpReply, HttpRequest } from "../_http1.ts";
import { reply, replyError, replyFor } from "./respond.ts";

/** A route: takes the decoded JSON body (`{}` when empty), returns the reply body. */
export type Handler = (body: unknown) => Promise<unknown> | unknown;
export type Routes = Record<string, Handler>;

/** One answered call, for metrics and the call log. */
export type AnsweredCall = {
  /** `VolumeDriver.Mount`; `unknown` for paths that are not routes (no caller-made labels). */
  method: string;
  status: number;
  seconds: number;
  /** The decoded request body (`{}` when empty; undefined when it was not JSON). */
  body: unknown;
  /** What refused or failed the call; null when it succeeded. */
  error: unknown;
};

export type RouteOptions = {
  report: (message: string) => void;
  /** Hears every call once answered. */
  onCall?: (call: AnsweredCall) => void;
};

/** How many problems an invalid-request reply names before "and N more". */
const ISSUES_SHOWN = 3;

/**
 * Parses `body` with `schema` or throws InvalidRequestError naming the first few bad fields and
 * how many more there are: a reply never grows with the request (keys are cut to 64 characters).
 */
export function parse<T>(schema: z.ZodType<T>, body: unknown, method: string): T {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const { issues } = result.error;
  const shown = issues.slice(0, ISSUES_SHOWN).map((issue) => {
    const path = issue.path.map((key) => {
      const text = String(key);
      return /^[A-Za-z0-9_]{1,64}$/.test(text) ? text : quoted(text);
    });
    return (path.length ? `${path.join(".")}: ` : "") + issue.message;
  });
  const more = issues.length - shown.length;
  const detail = shown.join("; ") + (more > 0 ? `; and ${more} more` : "");
  throw new InvalidRequestError(`Invalid ${method} request: ${detail}`);
}

/** The request handler for the plugin socket. */
export function createRouter(routes: Routes, options: RouteOptions) {
  const { onCall } = options;
  if (!onCall) return async (request: HttpRequest) => (await answer(request)).reply;
  return async function timed(request: HttpRequest): Promise<HttpReply> {
    const start = performance.now();
    const { reply, body, error } = await answer(request);
    const method = Object.hasOwn(routes, request.path) ? request.path.slice(1) : "unknown";
    const seconds = (performance.now() - start) / 1e3;
    onCall({ method, status: reply.status, seconds, body, error });
    return reply;
  };

  async function answer(
    request: HttpRequest,
  ): Promise<{ reply: HttpReply; body: unknown; error: unknown }> {
    const { path } = request;
    const handler = Object.hasOwn(routes, path) ? routes[path] : undefined;
    const withError = wantsErrorKey(path);
    if (!handler || request.method !== "POST") {
      const shown = (text: string) => text.length > 64 ? quoted(text) : text;
      const message = `Unknown method ${shown(request.method)} ${shown(path)}`;
      return { reply: replyError(404, message, withError), body: undefined, error: message };
    }
    let body: unknown = {};
    if (request.body.trim() !== "") {
      try {
        body = JSON.parse(request.body);
      } catch {
        const message = `Invalid ${path.slice(1)} request: body is not JSON`;
        return { reply: replyError(400, message, withError), body: undefined, error: message };
      }
    }
    try {
      return { reply: reply(await handler(body)), body, error: null };
    } catch (error) {
      return { reply: replyFor(error, options.report, withError), body, error };
    }
  }
}
