// Docker routes are data: path → handler. One dispatch function parses the body, runs the
// handler and maps the outcome; anything else is a 404.
import type { z } from "zod";
import { InvalidRequestError } from "../../engine/errors.ts";
import { wantsErrorKey } from "../../protocol/docker_plugin.ts";
import { reply, replyError, replyFor } from "./respond.ts";

/** A route: takes the decoded JSON body (`{}` when empty), returns the reply body. */
export type Handler = (body: unknown) => Promise<unknown> | unknown;
export type Routes = Record<string, Handler>;

export type RouteOptions = {
  report: (message: string) => void;
  /**
   * Hears every call once answered: the method (`VolumeDriver.Mount`; `unknown` for paths that
   * are not routes, so a caller cannot mint metric labels), the HTTP status and the seconds taken.
   */
  onCall?: (method: string, status: number, seconds: number) => void;
};

/** Parses `body` with `schema` or throws InvalidRequestError naming every bad field. */
export function parse<T>(schema: z.ZodType<T>, body: unknown, method: string): T {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const detail = result.error.issues
    .map((issue) => (issue.path.length ? `${issue.path.join(".")}: ` : "") + issue.message)
    .join("; ");
  throw new InvalidRequestError(`Invalid ${method} request: ${detail}`);
}

/** The request handler for the plugin socket. */
export function createRouter(routes: Routes, options: RouteOptions) {
  const { onCall } = options;
  if (!onCall) return answer;
  return async function timed(request: Request): Promise<Response> {
    const start = performance.now();
    const response = await answer(request);
    const path = pathOf(request.url);
    const method = Object.hasOwn(routes, path) ? path.slice(1) : "unknown";
    onCall(method, response.status, (performance.now() - start) / 1e3);
    return response;
  };

  async function answer(request: Request): Promise<Response> {
    const path = pathOf(request.url);
    const handler = Object.hasOwn(routes, path) ? routes[path] : undefined;
    const withError = wantsErrorKey(path);
    if (!handler || request.method !== "POST") {
      return replyError(404, `Unknown method ${request.method} ${path}`, withError);
    }
    const text = await request.text();
    let body: unknown = {};
    if (text.trim() !== "") {
      try {
        body = JSON.parse(text);
      } catch {
        return replyError(400, `Invalid ${path.slice(1)} request: body is not JSON`, withError);
      }
    }
    try {
      return reply(await handler(body));
    } catch (error) {
      return replyFor(error, options.report, withError);
    }
  }
}

/** The path of a request URL; cheaper than `new URL` for dockerd's `http+unix://…/Method`. */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start === -1) return "/";
  const query = url.indexOf("?", start);
  return query === -1 ? url.slice(start) : url.slice(start, query);
}
