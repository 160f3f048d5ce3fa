// A client for Berth's admin endpoint on a unix socket or a loopback port, and a reader of its
// server-sent events, for tests.
import type { AdminAddress } from "../../src/transport/admin/address.ts";

export type AdminReply = { status: number; headers: Headers; text: string; json(): unknown };

/** An HTTP client bound to one admin address; close it with `using`. */
export function adminClient(address: AdminAddress) {
  const client = address.transport === "unix"
    ? Deno.createHttpClient({ proxy: { transport: "unix", path: address.path } })
    : Deno.createHttpClient({});
  const base = address.transport === "unix"
    ? "http://localhost"
    : `http://${
      address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname
    }:${address.port}`;
  async function get(path: string, init: RequestInit = {}): Promise<AdminReply> {
    const response = await fetch(`${base}${path}`, { ...init, client });
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      text,
      json: () => JSON.parse(text),
    };
  }
  /** Opens the SSE feed; `next(event)` resolves with the data of the next frame of that event. */
  async function events(path = "/api/events") {
    const controller = new AbortController();
    const response = await fetch(`${base}${path}`, { client, signal: controller.signal });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    async function frame(): Promise<{ event: string; data: unknown }> {
      for (;;) {
        const end = buffer.indexOf("\n\n");
        if (end !== -1) {
          const raw = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (raw.startsWith(":")) continue;
          const event = /^event: (.*)$/m.exec(raw)?.[1] ?? "message";
          const data = /^data: (.*)$/m.exec(raw)?.[1] ?? "null";
          return { event, data: JSON.parse(data) };
        }
        const { value, done } = await reader.read();
        if (done) throw new Error("the feed ended");
        buffer += decoder.decode(value, { stream: true });
      }
    }
    return {
      status: response.status,
      contentType: response.headers.get("content-type"),
      async next(event: string): Promise<unknown> {
        for (;;) {
          const got = await frame();
          if (got.event === event) return got.data;
        }
      },
      async close() {
        await reader.cancel().catch(() => {});
        controller.abort();
      },
    };
  }
  return { get, events, [Symbol.dispose]: () => client.close() };
}
