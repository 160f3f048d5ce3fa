// Server-sent events framing: one `event:`/`data:` frame per message, and a stream whose end is
// under the server's control (shutdown must not wait for a browser that keeps a tab open).

const ENCODER = new TextEncoder();

/** One SSE frame; `data` is JSON, so it holds no newline that could split the frame. */
export function sseFrame(event: string, data: unknown, id?: number): Uint8Array {
  const idLine = id === undefined ? "" : `id: ${id}\n`;
  return ENCODER.encode(`${idLine}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

/** A comment line: keeps idle connections (and proxies) from timing out. */
export const SSE_KEEPALIVE = ENCODER.encode(": keepalive\n\n");

export type SseStream = {
  body: ReadableStream<Uint8Array>;
  send(frame: Uint8Array): void;
  close(): void;
};

/**
 * A stream for one client. `onClose` runs once, whether the client went away (cancel) or the
 * server closed it: that is where subscriptions are dropped.
 */
export function createSseStream(onClose: () => void): SseStream {
  let controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  let closed = false;
  const finish = () => {
    if (closed) return;
    closed = true;
    onClose();
  };
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    // The client went away; req.signal does not always fire for a streamed response.
    cancel: finish,
  });
  return {
    body,
    send(frame) {
      if (closed || !controller) return;
      try {
        controller.enqueue(frame);
      } catch {
        finish();
      }
    },
    close() {
      if (closed) return;
      try {
        controller?.close();
      } catch {
        // already errored by the client
      }
      finish();
    },
  };
}
