// Berth's own HTTP/1.1 server on a real unix socket, fed raw bytes: framings dockerd and curl
// use, pipelining, and requests framed wrongly on purpose.
import assert from "node:assert/strict";
import { join } from "node:path";
import { type HttpLimits, type HttpRequest, serveHttp1 } from "../../src/transport/_http1.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const LIMITS: HttpLimits = {
  maxConnections: 8,
  maxHeadBytes: 1024,
  maxBodyBytes: 64,
  idleTimeoutMs: 5_000,
  requestTimeoutMs: 5_000,
};

/** A server that echoes each request as JSON; the disposer shuts it down. */
function echoServer(dir: string) {
  const path = join(dir, "http.sock");
  const seen: HttpRequest[] = [];
  const server = serveHttp1(Deno.listen({ transport: "unix", path }), {
    limits: LIMITS,
    contentType: "application/json",
    handle: (request) => {
      seen.push(request);
      return Promise.resolve({ status: 200, body: JSON.stringify(request) });
    },
    refusal: (status, message) => ({ status, body: JSON.stringify({ Err: message }) }),
    report: () => {},
  });
  return { path, seen, [Symbol.asyncDispose]: () => server.shutdown() };
}

/** Sends `text` raw, then reads until the server closes or `replies` replies came. */
async function exchange(path: string, text: string, replies = 1): Promise<string> {
  using conn = await Deno.connect({ transport: "unix", path });
  const bytes = new TextEncoder().encode(text);
  for (let done = 0; done < bytes.length;) done += await conn.write(bytes.subarray(done));
  let received = "";
  const buffer = new Uint8Array(65536);
  while ((received.match(/HTTP\/1\.1 \d{3}/g)?.length ?? 0) < replies || !complete(received)) {
    const count = await conn.read(buffer);
    if (count === null) break;
    received += new TextDecoder().decode(buffer.subarray(0, count));
  }
  return received;
}

/** Whether the last reply in `text` has all of its Content-Length body. */
function complete(text: string): boolean {
  const start = text.lastIndexOf("HTTP/1.1 ");
  const headEnd = text.indexOf("\r\n\r\n", start);
  if (headEnd === -1) return false;
  const length = Number(/content-length: (\d+)/i.exec(text.slice(start, headEnd))?.[1] ?? 0);
  return text.length - (headEnd + 4) >= length;
}

const post = (path: string, body: string, extra = "") =>
  `POST ${path} HTTP/1.1\r\nHost: \r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;

Deno.test("http1 serves the framings dockerd and curl use", async (t) => {
  await using dir = await tempDir();
  await using server = echoServer(dir.path);
  await t.step(
    "Content-Length, and a query and an absolute-form target are cut to the path",
    async () => {
      const reply = await exchange(server.path, post("http://plugin/VolumeDriver.Get?x=1", "{}\n"));
      assert.match(reply, /^HTTP\/1.1 200 OK\r\n/);
      assert.deepEqual(server.seen.at(-1), {
        method: "POST",
        path: "/VolumeDriver.Get",
        body: "{}\n",
      });
    },
  );
  await t.step("chunked with an extension and a trailer", async () => {
    const text = "POST /A HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
      '3;x=y\r\n{"a\r\n4\r\n":1}\r\n0\r\nTrailer: t\r\n\r\n';
    assert.match(await exchange(server.path, text), /^HTTP\/1.1 200/);
    assert.equal(server.seen.at(-1)?.body, '{"a":1}');
  });
  await t.step("Expect: 100-continue gets its 100 before the body is sent", async () => {
    using conn = await Deno.connect({ transport: "unix", path: server.path });
    const head = "POST /B HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n";
    await conn.write(new TextEncoder().encode(head));
    const buffer = new Uint8Array(1024);
    const first = new TextDecoder().decode(buffer.subarray(0, (await conn.read(buffer))!));
    assert.equal(first, "HTTP/1.1 100 Continue\r\n\r\n");
    await conn.write(new TextEncoder().encode("{}"));
    assert.match(new TextDecoder().decode(buffer.subarray(0, (await conn.read(buffer))!)), /200/);
  });
  await t.step("pipelined requests are answered in order on one connection", async () => {
    const text = post("/one", "1") + post("/two", "22") + post("/three", "333");
    const reply = await exchange(server.path, text, 3);
    const paths = [...reply.matchAll(/"path":"([^"]+)"/g)].map((match) => match[1]);
    assert.deepEqual(paths, ["/one", "/two", "/three"]);
  });
  await t.step("HTTP/1.0 and Connection: close end the connection after the reply", async () => {
    for (
      const text of [
        "POST /c HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
        post("/d", "", "Connection: close\r\n"),
      ]
    ) {
      const reply = await exchange(server.path, text, 5); // would wait for 5 unless closed
      assert.equal(reply.match(/HTTP\/1\.1 200/g)?.length, 1);
      assert.match(reply, /connection: close/);
    }
  });
});

Deno.test("http1 refuses a request framed wrongly, with a JSON Err, and closes", async () => {
  await using dir = await tempDir();
  await using server = echoServer(dir.path);
  const cases: [string, RegExp][] = [
    ["GARBAGE\r\n\r\n", /^HTTP\/1.1 400[\s\S]*not an HTTP\/1.1 request line/],
    ["POST /x HTTP/2.0\r\n\r\n", /^HTTP\/1.1 400/],
    ["POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", /^HTTP\/1.1 400[\s\S]*Content-Length/],
    ["POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", /^HTTP\/1.1 400/],
    [
      "POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      /^HTTP\/1.1 400[\s\S]*both Content-Length and Transfer-Encoding/,
    ],
    ["POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", /^HTTP\/1.1 501/],
    ["POST /x HTTP/1.1\r\nno colon here\r\n\r\n", /^HTTP\/1.1 400[\s\S]*malformed header/],
    [
      "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      /^HTTP\/1.1 400[\s\S]*chunk size/,
    ],
    [post("/x", "x".repeat(65)), /^HTTP\/1.1 413[\s\S]*larger than 64 bytes/],
    [`POST /x HTTP/1.1\r\nX: ${"h".repeat(2000)}\r\n\r\n`, /^HTTP\/1.1 431/],
  ];
  for (const [text, expected] of cases) {
    const reply = await exchange(server.path, text, 2);
    assert.match(reply, expected, JSON.stringify(text.slice(0, 60)));
    assert.match(reply, /connection: close\r\n\r\n\{"Err":/);
  }
  assert.equal(server.seen.length, 0, "none reached the handler");
});
