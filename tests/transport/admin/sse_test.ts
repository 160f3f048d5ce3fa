import assert from "node:assert/strict";
import { createSseStream, sseFrame } from "../../../src/transport/admin/_sse.ts";

Deno.test("sseFrame writes one event with JSON data and an optional id", () => {
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  assert.equal(decode(sseFrame("batch", { a: "x\ny" })), 'event: batch\ndata: {"a":"x\\ny"}\n\n');
  assert.equal(decode(sseFrame("hello", 1, 7)), "id: 7\nevent: hello\ndata: 1\n\n");
});

Deno.test("createSseStream runs onClose once, whether the client or the server ends it", async () => {
  let closed = 0;
  const byClient = createSseStream(() => closed++);
  byClient.send(sseFrame("x", 1));
  const reader = byClient.body.getReader();
  assert.ok((await reader.read()).value);
  await reader.cancel();
  byClient.send(sseFrame("x", 2)); // after the client left: dropped, no throw
  byClient.close();
  assert.equal(closed, 1);

  const byServer = createSseStream(() => closed++);
  byServer.close();
  byServer.close();
  assert.equal(closed, 2);
  assert.equal((await byServer.body.getReader().read()).done, true);
});
