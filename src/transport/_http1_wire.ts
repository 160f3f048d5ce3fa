// The wire format of _http1.ts: a request head parsed, a reply framed, bytes written whole.
import type { HttpReply, StreamConn } from "./_http1.ts";

const ENCODER = new TextEncoder();
const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  408: "Request Timeout",
  413: "Content Too Large",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
};

/** A request the client framed wrongly: answered with `status`, then the connection closes. */
export class Refused extends Error {
  constructor(readonly status: number, message: string, readonly path = "") {
    super(message);
  }
}

export type Head = {
  method: string;
  path: string;
  length: number;
  chunked: boolean;
  close: boolean;
  expectContinue: boolean;
};

export function parseHead(text: string): Head {
  const lines = text.split("\r\n");
  const [method = "", target = "", version = "", extra] = lines[0]!.split(" ");
  if (extra !== undefined || !/^HTTP\/1\.[01]$/.test(version) || method === "") {
    throw new Refused(400, "not an HTTP/1.1 request line");
  }
  let path = target;
  if (!path.startsWith("/")) {
    // absolute-form: http://host/path
    const slash = path.indexOf("/", path.indexOf("//") + 2);
    path = slash === -1 ? "/" : path.slice(slash);
  }
  const query = path.indexOf("?");
  if (query !== -1) path = path.slice(0, query);
  const head: Head = {
    method,
    path,
    length: 0,
    chunked: false,
    close: version === "HTTP/1.0",
    expectContinue: false,
  };
  let lengthSeen: string | null = null;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    if (colon <= 0) throw new Refused(400, "malformed header line", path);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "content-length") {
      if (!/^\d{1,15}$/.test(value) || (lengthSeen !== null && lengthSeen !== value)) {
        throw new Refused(400, "bad Content-Length", path);
      }
      lengthSeen = value;
      head.length = Number(value);
    } else if (name === "transfer-encoding") {
      if (value.toLowerCase() !== "chunked") {
        throw new Refused(501, `Transfer-Encoding ${value.slice(0, 32)} is not supported`, path);
      }
      head.chunked = true;
    } else if (name === "connection") {
      const tokens = value.toLowerCase();
      if (tokens.includes("close")) head.close = true;
      else if (tokens.includes("keep-alive")) head.close = false;
    } else if (name === "expect" && value.toLowerCase() === "100-continue") {
      head.expectContinue = true;
    }
  }
  if (head.chunked && lengthSeen !== null) {
    throw new Refused(400, "both Content-Length and Transfer-Encoding", path);
  }
  return head;
}

/** Writes `reply`: one buffer for a string, chunked pieces otherwise. */
export async function writeReply(
  conn: StreamConn,
  reply: HttpReply,
  contentType: string,
  last: boolean,
) {
  if (typeof reply.body === "string") {
    await writeAll(conn, encodeReply(reply.status, reply.body, contentType, last));
    return;
  }
  const head = `HTTP/1.1 ${reply.status} ${REASONS[reply.status] ?? "Unknown"}\r\n` +
    `content-type: ${contentType}\r\ntransfer-encoding: chunked\r\n` +
    (last ? "connection: close\r\n" : "") + "\r\n";
  await writeAll(conn, ENCODER.encode(head));
  for (let next = reply.body.next(); !next.done; next = reply.body.next()) {
    const bytes = ENCODER.encode(next.value);
    if (bytes.length === 0) continue;
    const frame = concat([
      ENCODER.encode(`${bytes.length.toString(16)}\r\n`),
      bytes,
      ENCODER.encode("\r\n"),
    ]);
    await writeAll(conn, frame);
  }
  await writeAll(conn, ENCODER.encode("0\r\n\r\n"));
}

export function encodeReply(status: number, body: string, contentType: string, last: boolean) {
  const bytes = ENCODER.encode(body);
  const head = `HTTP/1.1 ${status} ${REASONS[status] ?? "Unknown"}\r\n` +
    `content-type: ${contentType}\r\ncontent-length: ${bytes.length}\r\n` +
    (last ? "connection: close\r\n" : "") + "\r\n";
  const out = new Uint8Array(head.length + bytes.length);
  ENCODER.encodeInto(head, out);
  out.set(bytes, head.length);
  return out;
}

export async function writeAll(conn: StreamConn, bytes: Uint8Array) {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

export function findHeadEnd(buffer: Uint8Array, from: number, to: number): number {
  for (let i = from; i + 3 < to; i++) {
    if (buffer[i] === 13 && buffer[i + 1] === 10 && buffer[i + 2] === 13 && buffer[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

export function findCrlf(buffer: Uint8Array, from: number, to: number): number {
  for (let i = from; i + 1 < to; i++) if (buffer[i] === 13 && buffer[i + 1] === 10) return i;
  return -1;
}

export function concat(parts: Uint8Array[], total = parts.reduce((sum, p) => sum + p.length, 0)) {
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
