// One request with a body over the limit, on a connection of its own: a server that answers 413
// without reading the body may close the socket while the body is still going out, so the reply
// is read while writing and a failed write is no failure. `Connection: close` ends the reply.
import type { Reply } from "../helpers/plugin_socket.ts";

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();

/** POSTs `text` to `/method` and returns the reply; rejects only when none came in 10 s. */
export async function callOversize(socket: string, method: string, text: string): Promise<Reply> {
  const conn = await Deno.connect({ transport: "unix", path: socket });
  try {
    const body = ENCODER.encode(text);
    const head = `POST /${method} HTTP/1.1\r\nHost: plugin\r\nConnection: close\r\n` +
      `Content-Length: ${body.length}\r\n\r\n`;
    const reading = readAll(conn);
    try {
      for (const part of [ENCODER.encode(head), body]) {
        for (let at = 0; at < part.length;) at += await conn.write(part.subarray(at));
      }
    } catch {
      // the server stopped reading: its reply, if any, is already on the way
    }
    const bytes = await Promise.race([
      reading,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("no reply within 10 s")), 10_000)
      ),
    ]);
    return parseReply(DECODER.decode(bytes));
  } finally {
    try {
      conn.close();
    } catch {
      // closed by the server
    }
  }
}

async function readAll(conn: Deno.Conn): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buffer = new Uint8Array(64 * 1024);
  for (;;) {
    let count: number | null;
    try {
      count = await conn.read(buffer);
    } catch {
      count = null; // reset after the reply
    }
    if (count === null) break;
    parts.push(buffer.slice(0, count));
  }
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function parseReply(raw: string): Reply {
  const end = raw.indexOf("\r\n\r\n");
  if (end === -1) throw new Error(`no complete reply: ${JSON.stringify(raw.slice(0, 200))}`);
  const [statusLine = "", ...lines] = raw.slice(0, end).split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
  const header = (name: string) =>
    lines.find((line) => line.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim();
  let text = raw.slice(end + 4);
  if (header("transfer-encoding")?.toLowerCase() === "chunked") text = unchunk(text);
  let body: unknown = undefined;
  try {
    body = JSON.parse(text);
  } catch {
    // left undefined: the caller reports a reply that is not JSON
  }
  return { status, contentType: header("content-type") ?? null, text, body };
}

function unchunk(text: string): string {
  let out = "";
  for (let at = 0;;) {
    const line = text.indexOf("\r\n", at);
    const size = parseInt(text.slice(at, line), 16);
    if (!(size > 0)) return out;
    out += text.slice(line + 2, line + 2 + size);
    at = line + 2 + size + 2;
  }
}
