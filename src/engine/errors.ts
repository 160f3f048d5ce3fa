// The engine's typed errors: what callers tell apart. Transports map them to the wire once.

/** Base of every error the engine raises on purpose; transports map the subclasses. */
export class EngineError extends Error {
  override name = "EngineError";
}

/** The entity does not exist. */
export class NotFoundError extends EngineError {
  override name = "NotFoundError";
}

/** The machine refused the event in its current state. */
export class IllegalStateError extends EngineError {
  override name = "IllegalStateError";
}

/** The request is malformed or names something the backend does not accept. */
export class InvalidRequestError extends EngineError {
  override name = "InvalidRequestError";
}

/** The effect ran and failed; its failure is in the log. */
export class EffectFailedError extends EngineError {
  override name = "EffectFailedError";
}

/** The engine cannot record events any more (the log failed) or is shutting down. */
export class UnavailableError extends EngineError {
  override name = "UnavailableError";
}
