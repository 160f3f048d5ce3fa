// The one place that turns results and errors into Docker plugin replies.
// Statuses as DESIGN.md rule 5: 500 refused or failed, 400 invalid input, 404 unknown method.
import { InvalidRequestError } from "../../engine/errors.ts";
import { EngineError } from "../../engine/errors.ts";
import { PLUGIN_CONTENT_TYPE } from "../../protocol/docker_plugin.ts";

const HEADERS = { "content-type": PLUGIN_CONTENT_TYPE };

/**
 * A JSON body too big to make in one go (List of 100,000 volumes: 16 MB): its text in pieces,
 * each made only when the connection asks for more, so other calls are answered in between.
 */
export class JsonPieces {
  constructor(readonly pieces: Iterator<string>) {}
}

const ENCODER = new TextEncoder();

/** A success reply: always a JSON body, at least `{}`. */
export function reply(body: unknown): Response {
  if (body instanceof JsonPieces) {
    const { pieces } = body;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = pieces.next();
        if (next.done) controller.close();
        else controller.enqueue(ENCODER.encode(next.value));
      },
    });
    return new Response(stream, { status: 200, headers: HEADERS });
  }
  return new Response(JSON.stringify(body ?? {}), { status: 200, headers: HEADERS });
}

/** A failure reply with `{"Err": message}`; `withError` adds `Error`, which IPAM callers read. */
export function replyError(status: number, message: string, withError = false): Response {
  const body = withError ? { Err: message, Error: message } : { Err: message };
  return new Response(JSON.stringify(body), { status, headers: HEADERS });
}

/** Maps any thrown value to a reply; what is not ours goes to `report` and out as a generic line. */
export function replyFor(
  error: unknown,
  report: (message: string) => void,
  withError = false,
): Response {
  if (error instanceof InvalidRequestError) return replyError(400, error.message, withError);
  if (error instanceof EngineError) return replyError(500, error.message, withError);
  report(error instanceof Error ? (error.stack ?? error.message) : String(error));
  return replyError(500, "Internal error in Berth; its log has the details", withError);
}
