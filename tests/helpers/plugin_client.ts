// A minimal HTTP/1.1 client for the plugin socket: one keep-alive unix connection, one request in
// flight at a time (no pipelining), as dockerd's plugin client uses it. Cheaper than fetch, so the
// bench measures the server rather than the client; tests use it because a Deno fetch client was
// seen to stall for seconds on requests after many parallel ones.

const ENCODER = new TextEncoder();
const LATIN1 = new TextDecoder("latin1");
const UTF8 = new TextDecoder();
const HEADER_END = [0x0d, 0x0a, 0x0d, 0x0a];
const READ_CHUNK = 64 * 1024;

/** One reply: the status, its content type, the raw body and the body parsed as JSON (`undefined` when not JSON). */
export type PluginReply = {
  status: number;
  contentType: string | null;
  text: string;
  body: unknown;
};

/** One keep-alive connection to a plugin socket. */
export type PluginClient = {
  /**
   * POSTs to `method` (e.g. `/VolumeDriver.Mount`) as dockerd does (no Content-Type) and reads the
   * whole reply. A string body is sent as is, `undefined` as nothing, anything else as JSON + "\n".
   */
  call(method: string, body: unknown): Promise<PluginReply>;
  /** True once the server said `Connection: close` or this side closed it. */
  readonly closed: boolean;
  close(): void;
} & Disposable;

/** Connects to the plugin socket at `path`. */
export async function connectPlugin(path: string): Promise<PluginClient> {
  const conn = await Deno.connect({ transport: "unix", path });
  let buffer = new Uint8Array(READ_CHUNK);
  let filled = 0;
  let busy = false;
  let serverClosed = false;
  let released = false;

  /** Reads more bytes into `buffer`; throws if the server closed the connection. */
  async function fill() {
    if (buffer.length - filled < READ_CHUNK / 4) {
      const bigger = new Uint8Array(buffer.length * 2);
      bigger.set(buffer.subarray(0, filled));
      buffer = bigger;
    }
    const count = await conn.read(buffer.subarray(filled));
    if (count === null) throw new Error("Connection closed by the server in the middle of a reply");
    filled += count;
  }

  async function readReply(): Promise<PluginReply> {
    let headerEnd = -1;
    while ((headerEnd = indexOf(buffer, HEADER_END, 0, filled)) === -1) await fill();
    const head = LATIN1.decode(buffer.subarray(0, headerEnd)).split("\r\n");
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? "")?.[1]);
    if (!Number.isInteger(status)) throw new Error(`Bad status line: ${JSON.stringify(head[0])}`);
    const headers = new Map<string, string>();
    for (const line of head.slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0) {
        headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
    }
    const start = headerEnd + 4;
    let bodyBytes: Uint8Array;
    let end: number;
    if (headers.get("transfer-encoding")?.toLowerCase() === "chunked") {
      [bodyBytes, end] = await readChunked(start);
    } else {
      const length = Number(headers.get("content-length"));
      if (!Number.isInteger(length) || length < 0) {
        throw new Error("Reply has neither a Content-Length nor chunked encoding");
      }
      while (filled < start + length) await fill();
      bodyBytes = buffer.slice(start, start + length);
      end = start + length;
    }
    if (end !== filled) throw new Error(`${filled - end} unexpected bytes after the reply`);
    filled = 0;
    if (headers.get("connection")?.toLowerCase() === "close") serverClosed = true;
    const text = UTF8.decode(bodyBytes);
    let body: unknown = undefined;
    try {
      body = JSON.parse(text);
    } catch {
      // left undefined: the caller reports a reply that is not JSON
    }
    return { status, contentType: headers.get("content-type") ?? null, text, body };
  }

  /** Decodes a chunked body starting at `offset`; returns the body and where the reply ends. */
  async function readChunked(offset: number): Promise<[Uint8Array, number]> {
    const parts: Uint8Array[] = [];
    let at = offset;
    for (;;) {
      let lineEnd: number;
      while ((lineEnd = indexOf(buffer, HEADER_END.slice(2), at, filled)) === -1) await fill();
      const size = parseInt(LATIN1.decode(buffer.subarray(at, lineEnd)), 16);
      if (!Number.isInteger(size)) throw new Error("Bad chunk size line");
      at = lineEnd + 2;
      while (filled < at + size + 2) await fill();
      if (size === 0) return [concat(parts), at + 2];
      parts.push(buffer.slice(at, at + size));
      at += size + 2;
    }
  }

  async function writeAll(bytes: Uint8Array) {
    let written = 0;
    while (written < bytes.length) written += await conn.write(bytes.subarray(written));
  }

  function close() {
    if (released) return;
    released = true;
    try {
      conn.close();
    } catch {
      // already closed
    }
  }

  return {
    get closed() {
      return serverClosed || released;
    },
    async call(method, body) {
      if (busy) throw new Error("One request at a time per connection (no pipelining)");
      if (serverClosed || released) throw new Error("This connection is closed");
      busy = true;
      try {
        const payload = ENCODER.encode(
          body === undefined ? "" : typeof body === "string" ? body : `${JSON.stringify(body)}\n`,
        );
        const head = ENCODER.encode(
          `POST ${method} HTTP/1.1\r\nHost: plugin\r\n` +
            `Accept: application/vnd.docker.plugins.v1.2+json\r\n` +
            `Content-Length: ${payload.length}\r\n\r\n`,
        );
        const request = new Uint8Array(head.length + payload.length);
        request.set(head);
        request.set(payload, head.length);
        await writeAll(request);
        return await readReply();
      } finally {
        busy = false;
      }
    },
    close,
    [Symbol.dispose]: close,
  };
}

function indexOf(haystack: Uint8Array, needle: number[], from: number, to: number): number {
  const first = needle[0]!;
  outer: for (let i = from; i <= to - needle.length; i++) {
    if (haystack[i] !== first) continue;
    for (let k = 1; k < needle.length; k++) if (haystack[i + k] !== needle[k]) continue outer;
    return i;
  }
  return -1;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
