// The one place that turns results and errors into Docker plugin replies.
// Statuses as DESIGN.md rule 5: 500 refused or failed, 400 invalid input, 404 unknown method.
import { EngineError, InvalidRequestError } from "../../engine/errors.ts";
import type { HttpReply } from "../_http1.ts";

/**
 * A JSON body too big to make in one go (List of 100,000 volumes: 16 MB): its text in pieces,
 * each made only when the connection asks for more, so other calls are answered in between.
 */
export class JsonPieces {
  constructor(readonly pieces: Iterator<string>) {}
}

/** A success reply: always a JSON body, at least `{}`. */
export function reply(body: unknown): HttpReply {
  if (body instanceof JsonPieces) return { status: 200, body: body.pieces };
  return { status: 200, body: JSON.stringify(body ?? {}) };
}

/** A failure reply with `{"Err": message}`; `withError` adds `Error`, which IPAM callers read. */
export function replyError(status: number, message: string, withError = false): HttpReply {
  const body = withError ? { Err: message, Error: message } : { Err: message };
  return { status, body: JSON.stringify(body) };
}

/** Maps any thrown value to a reply; what is not ours goes to `report` and out as a generic line. */
export function replyFor(
  error: unknown,
  report: (message: string) => void,
  withError = false,
): HttpReply {
  if (error instanceof InvalidRequestError) return replyError(400, error.message, withError);
  if (error instanceof EngineError) return replyError(500, error.message, withError);
  report(error instanceof Error ? (error.stack ?? error.message) : String(error));
  return replyError(500, "Internal error in Berth; its log has the details", withError);
}
