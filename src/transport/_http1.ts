// A small HTTP/1.1 server for the plugin socket: what dockerd speaks (POST, a body framed by
// Content-Length or chunked, keep-alive) and no more, with the limits Deno.serve does not offer:
// a cap on connections, deadlines for idle connections and for slow requests (slowloris), caps
// on the size of a head and of a body. It never dies of EMFILE: accept waits and tries again.

import {
  concat,
  encodeReply,
  findCrlf,
  findHeadEnd,
  parseHead,
  Refused,
  writeAll,
  writeReply,
} from "./_http1_wire.ts";

export type HttpRequest = { method: string; path: string; body: string };

/** A reply body is one string, or pieces made as the connection takes them (chunked). */
export type HttpReply = { status: number; body: string | Iterator<string> };

export type HttpLimits = {
  /** Connections served at once; one more is answered 503 and closed. */
  maxConnections: number;
  /** Bytes of request line and headers. */
  maxHeadBytes: number;
  /** Bytes of body; a longer one is answered 413 before it is read. */
  maxBodyBytes: number;
  /** How long a kept-alive connection may wait for its next request. */
  idleTimeoutMs: number;
  /** How long a request may take to arrive whole once its first byte came (and a reply to go). */
  requestTimeoutMs: number;
};

export type HttpOptions = {
  limits: HttpLimits;
  contentType: string;
  handle: (request: HttpRequest) => Promise<HttpReply>;
  /** The reply for a request refused before it reached `handle` (400, 408, 413, 431, 503). */
  refusal: (status: number, message: string, path: string) => HttpReply;
  report: (message: string) => void;
};

export type HttpServer = {
  /** Connections open now. */
  readonly connections: number;
  /** Connections answered 503 because `maxConnections` were open. */
  readonly refusedConnections: number;
  /** Stops accepting, closes idle connections, lets requests in flight finish. */
  shutdown(): Promise<void>;
};

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();
const FIRST_READ = 16 * 1024;
/** After a refusal, how long and how much of the rest of a request is read and dropped. */
const LINGER_MS = 2_000;
const LINGER_BYTES = 64 * 1024 * 1024;

/** What the server needs of a connection: a Deno.Conn, or an adopted node:net socket. */
export type StreamConn = Pick<Deno.Conn, "read" | "write" | "closeWrite" | "close">;

/** What the server needs of a listener: a Deno.Listener, or an inherited socket. */
export type StreamListener = { accept(): Promise<StreamConn>; close(): void };

type Connection = {
  conn: StreamConn;
  /** When the sweeper closes it (ms since epoch); Infinity while its request is handled. */
  deadline: number;
  /** True while its request is handled and its reply written: shutdown lets it finish. */
  busy: boolean;
};

/** Serves `listener` until `shutdown()`. */
export function serveHttp1(listener: StreamListener, options: HttpOptions): HttpServer {
  const { limits, report } = options;
  const open = new Set<Connection>();
  const running = new Set<Promise<void>>();
  let refusedConnections = 0;
  let closing = false;
  let lastAcceptError = 0;
  const tick = Math.max(10, Math.min(1000, limits.idleTimeoutMs / 4, limits.requestTimeoutMs / 4));
  const sweeper = setInterval(() => {
    const now = Date.now();
    for (const connection of open) if (connection.deadline < now) close(connection.conn);
  }, tick);

  const accepting = (async () => {
    while (!closing) {
      let conn: StreamConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (closing || error instanceof Deno.errors.BadResource) return;
        // EMFILE and the like: say so at most once a minute, wait, and go on serving.
        if (Date.now() - lastAcceptError > 60_000) {
          lastAcceptError = Date.now();
          report(`plugin socket cannot accept a connection: ${describe(error)}; retrying`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      if (open.size >= limits.maxConnections) {
        refusedConnections++;
        const message = `Berth serves at most ${limits.maxConnections} connections at once`;
        const reply = options.refusal(503, message, "");
        writeAll(conn, encodeReply(reply.status, String(reply.body), options.contentType, true))
          .catch(() => {}).finally(() => close(conn));
        continue;
      }
      const connection: Connection = { conn, deadline: Infinity, busy: false };
      open.add(connection);
      const done = serveConnection(connection).finally(() => {
        open.delete(connection);
        close(conn);
        running.delete(done);
      });
      running.add(done);
    }
  })();

  async function serveConnection(connection: Connection) {
    const { conn } = connection;
    let buffer = new Uint8Array(FIRST_READ);
    let filled = 0;
    /** Reads more bytes; false at the end of the stream. */
    const fill = async (max: number): Promise<boolean> => {
      if (filled === buffer.length) {
        if (buffer.length >= max) throw new Refused(431, `request head over ${max} bytes`);
        const bigger = new Uint8Array(Math.min(max, buffer.length * 2));
        bigger.set(buffer.subarray(0, filled));
        buffer = bigger;
      }
      const count = await conn.read(buffer.subarray(filled));
      if (count === null) return false;
      filled += count;
      return true;
    };
    const take = (count: number): Uint8Array => {
      const taken = buffer.slice(0, count);
      buffer.copyWithin(0, count, filled);
      filled -= count;
      return taken;
    };
    const headCap = limits.maxHeadBytes;
    const bodyCap = limits.maxBodyBytes;
    try {
      while (!closing) {
        connection.busy = false;
        connection.deadline = Date.now() + limits.idleTimeoutMs;
        let headEnd = -1;
        let scanned = 0;
        let started = filled > 0;
        if (started) connection.deadline = Date.now() + limits.requestTimeoutMs;
        while ((headEnd = findHeadEnd(buffer, scanned, filled)) === -1) {
          scanned = Math.max(0, filled - 3);
          if (filled > headCap) throw new Refused(431, `request head over ${headCap} bytes`);
          if (!await fill(headCap + 4)) {
            if (filled > 0) throw new Refused(400, "connection closed in the middle of a head");
            return;
          }
          if (!started) {
            started = true;
            connection.deadline = Date.now() + limits.requestTimeoutMs;
          }
        }
        if (headEnd > headCap) throw new Refused(431, `request head over ${headCap} bytes`);
        const head = parseHead(DECODER.decode(buffer.subarray(0, headEnd)));
        take(headEnd + 4);
        let body: Uint8Array;
        if (head.chunked) {
          body = await readChunked();
        } else {
          if (head.length > bodyCap) {
            throw new Refused(413, `Request body larger than ${bodyCap} bytes`, head.path);
          }
          if (head.expectContinue) {
            await writeAll(conn, ENCODER.encode("HTTP/1.1 100 Continue\r\n\r\n"));
          }
          while (filled < head.length) {
            if (!await fill(Math.max(head.length, FIRST_READ))) {
              throw new Refused(400, "connection closed in the middle of a body", head.path);
            }
          }
          body = take(head.length);
        }
        connection.deadline = Infinity;
        connection.busy = true;
        let reply: HttpReply;
        try {
          reply = await options.handle({
            method: head.method,
            path: head.path,
            body: DECODER.decode(body),
          });
        } catch (error) {
          report(`plugin socket: ${describe(error)}`);
          reply = options.refusal(
            500,
            "Internal error in Berth; its log has the details",
            head.path,
          );
        }
        const last = closing || head.close;
        connection.deadline = Date.now() + limits.requestTimeoutMs;
        await writeReply(conn, reply, options.contentType, last);
        if (last) return;
      }
    } catch (error) {
      if (!(error instanceof Refused)) return; // reset, closed by the sweeper or by shutdown
      const reply = options.refusal(error.status, error.message, error.path);
      connection.deadline = Date.now() + limits.requestTimeoutMs;
      try {
        await writeAll(
          conn,
          encodeReply(reply.status, String(reply.body), options.contentType, true),
        );
        await conn.closeWrite();
        // Read what the client is still sending for a moment, so that a client that writes its
        // whole body before it reads is not cut off by a broken pipe before it sees the reply.
        connection.deadline = Date.now() + LINGER_MS;
        for (let drained = 0; drained < LINGER_BYTES;) {
          const count = await conn.read(buffer);
          if (count === null) break;
          drained += count;
        }
      } catch {
        // closed by the client or by the sweeper
      }
    }

    async function readChunked(): Promise<Uint8Array> {
      const parts: Uint8Array[] = [];
      let total = 0;
      for (;;) {
        let lineEnd: number;
        while ((lineEnd = findCrlf(buffer, 0, filled)) === -1) {
          if (filled > 1024) throw new Refused(400, "chunk size line too long");
          if (!await fill(bodyCap + FIRST_READ)) throw new Refused(400, "body cut off");
        }
        const line = DECODER.decode(buffer.subarray(0, lineEnd)).split(";")[0]!.trim();
        if (!/^[0-9a-fA-F]{1,8}$/.test(line)) throw new Refused(400, "bad chunk size");
        const size = parseInt(line, 16);
        total += size;
        if (total > bodyCap) throw new Refused(413, `Request body larger than ${bodyCap} bytes`);
        take(lineEnd + 2);
        if (size === 0) {
          // Trailers, if any, up to the empty line that ends the message.
          for (;;) {
            while ((lineEnd = findCrlf(buffer, 0, filled)) === -1) {
              if (filled > headCap) throw new Refused(431, "trailers too long");
              if (!await fill(headCap + 4)) throw new Refused(400, "body cut off");
            }
            take(lineEnd + 2);
            if (lineEnd === 0) return concat(parts, total);
          }
        }
        while (filled < size + 2) {
          if (!await fill(bodyCap + FIRST_READ)) throw new Refused(400, "body cut off");
        }
        const chunk = take(size + 2);
        if (chunk[size] !== 13 || chunk[size + 1] !== 10) throw new Refused(400, "bad chunk end");
        parts.push(chunk.subarray(0, size));
      }
    }
  }

  return {
    get connections() {
      return open.size;
    },
    get refusedConnections() {
      return refusedConnections;
    },
    async shutdown() {
      closing = true;
      close(listener);
      await accepting;
      for (const connection of open) if (!connection.busy) close(connection.conn);
      await Promise.all(running);
      clearInterval(sweeper);
    },
  };
}

function close(resource: { close(): void }) {
  try {
    resource.close();
  } catch {
    // already closed
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
