// The admin endpoint: the inspector page and its assets, the JSON API, the SSE feed, /metrics
// and /healthz, on a 0600 unix socket or a loopback port. It only reads: the plugin socket alone
// changes anything. It listens before the log is read, so /healthz can say "starting".
import { dirname } from "node:path";
import type { Engine } from "../../engine/engine.ts";
import { createInspectorApi, type InspectorApi, SequenceError } from "../../inspect/api.ts";
import { PAGE_ASSETS } from "../../inspect/page/assets.ts";
import { clearStaleSocket } from "../_unix_socket.ts";
import { createSseStream, SSE_KEEPALIVE, sseFrame, type SseStream } from "./_sse.ts";
import type { AdminAddress } from "./address.ts";
import { type Metrics, renderMetrics } from "./metrics.ts";
import { ApiError, apiRoute } from "./routes.ts";

export type AdminServer = {
  /** Where it listens; for port 0, the port the system gave. */
  address: AdminAddress;
  /** Replay and reconcile are done and the plugin socket listens: serve the API, /healthz 200. */
  ready(parts: { engine: Engine; lastSeq: number; logBytes: () => number }): void;
  /** Ends every feed and stops listening; removes the socket file. */
  shutdown(): Promise<void>;
};

export type AdminOptions = {
  address: AdminAddress;
  /** The log segments' directory, read (never written) for history and time travel. */
  logDir: string;
  metrics: Metrics;
  report: (message: string) => void;
};

const KEEPALIVE_MS = 15_000;
const JSON_HEADERS = { "content-type": "application/json; charset=utf-8" };
const COMMON_HEADERS = {
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
  "referrer-policy": "no-referrer",
};
const LOOPBACK_HOST_REGEXP = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\])(:\d{1,5})?$/i;

type Live = { api: InspectorApi; logBytes: () => number };

/** Starts the admin endpoint; resolves once it listens. */
export async function serveAdmin(options: AdminOptions): Promise<AdminServer> {
  const { metrics, report } = options;
  const startedAt = Date.now();
  let live: Live | null = null;
  let stopping = false;
  const feeds = new Set<SseStream>();

  async function handle(request: Request): Promise<Response> {
    // A page on another site could reach a loopback port through DNS rebinding; its Host
    // header then names that site. The unix socket has no such reader.
    if (options.address.transport === "tcp") {
      const host = request.headers.get("host") ?? "";
      if (!LOOPBACK_HOST_REGEXP.test(host)) return error(403, `Host "${host}" is not loopback`);
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return error(405, `Cannot ${request.method}: the admin endpoint only reads`);
    }
    const { path, query } = splitUrl(request.url);
    const asset = PAGE_ASSETS.get(path);
    if (asset) return text(200, asset.body, asset.headers);
    if (path === "/healthz") return health();
    if (!live) return error(503, "Berth is starting: the log is being replayed");
    if (path === "/metrics") return metricsResponse(live);
    if (path === "/api/events") return feed(live.api);
    if (path === "/api/status") return json(200, status(live));
    try {
      const answer = await apiRoute(live.api, path, query);
      if (answer === null) return error(404, `No such page: ${path}`);
      if (typeof answer === "string") {
        return text(200, answer, { "content-type": "image/svg+xml; charset=utf-8" });
      }
      return json(200, answer);
    } catch (caught) {
      if (caught instanceof ApiError) return error(caught.status, caught.message);
      if (caught instanceof SequenceError) return error(400, caught.message);
      report(caught instanceof Error ? (caught.stack ?? caught.message) : String(caught));
      return error(500, "Internal error in Berth; its log has the details");
    }
  }

  function health(): Response {
    if (stopping) return json(503, { status: "stopping" });
    if (!live) return json(503, { status: "starting" });
    return json(200, { status: "ok" });
  }

  function status({ api, logBytes }: Live) {
    const counts = api.countsByKind();
    return {
      pid: Deno.pid,
      startedAt: new Date(startedAt).toISOString(),
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1e3),
      lastSeq: api.lastSeq(),
      logBytes: logBytes(),
      replaySeconds: metrics.start.replaySeconds,
      reconcileSeconds: metrics.start.reconcileSeconds,
      startSnapshotSeq: metrics.start.snapshotSeq,
      replayedRecords: metrics.start.replayedRecords,
      snapshotSeq: metrics.snapshots.lastSeq,
      snapshotAt: metrics.snapshots.lastAt === null
        ? null
        : new Date(metrics.snapshots.lastAt).toISOString(),
      snapshotFailures: metrics.snapshots.failures,
      actors: Object.fromEntries(
        [...counts].map(([kind, states]) => [
          kind,
          Object.fromEntries([...states].filter(([, count]) => count > 0)),
        ]),
      ),
    };
  }

  function metricsResponse({ api, logBytes }: Live): Response {
    const body = renderMetrics(metrics, {
      actors: api.countsByKind(),
      logBytes: logBytes(),
      logEvents: api.lastSeq(),
      uptimeSeconds: (Date.now() - startedAt) / 1e3,
    });
    return text(200, body, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
  }

  function feed(api: InspectorApi): Response {
    let unsubscribe = () => {};
    // Keeps the connection (and any proxy on it) from timing out while nothing happens.
    const keepalive = setInterval(() => stream.send(SSE_KEEPALIVE), KEEPALIVE_MS);
    const stream = createSseStream(() => {
      unsubscribe();
      clearInterval(keepalive);
      feeds.delete(stream);
    });
    feeds.add(stream);
    stream.send(sseFrame("hello", api.hello()));
    unsubscribe = api.subscribe((batch) => stream.send(sseFrame("batch", batch, batch.lastSeq)));
    return new Response(stream.body, {
      headers: { ...COMMON_HEADERS, "content-type": "text/event-stream; charset=utf-8" },
    });
  }

  const listening = Promise.withResolvers<Deno.Addr>();
  const onListen = (addr: Deno.Addr) => listening.resolve(addr);
  const onError = (caught: unknown) => {
    report(caught instanceof Error ? (caught.stack ?? caught.message) : String(caught));
    return error(500, "Internal error in Berth; its log has the details");
  };
  let server: Deno.HttpServer;
  if (options.address.transport === "unix") {
    const { path } = options.address;
    await Deno.mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await clearStaleSocket(path);
    server = Deno.serve({ path, onListen, onError }, handle);
  } else {
    const { hostname, port } = options.address;
    server = Deno.serve({ hostname, port, onListen, onError }, handle);
  }
  const addr = await listening.promise;
  let address = options.address;
  if (address.transport === "unix") await Deno.chmod(address.path, 0o600);
  else if (addr.transport === "tcp") address = { ...address, port: addr.port };

  return {
    address,
    ready({ engine, lastSeq, logBytes }) {
      live = { api: createInspectorApi({ engine, lastSeq, logDir: options.logDir }), logBytes };
      metrics.start.readyAt = Date.now();
    },
    async shutdown() {
      stopping = true;
      for (const stream of [...feeds]) stream.close();
      live?.api.close();
      await server.shutdown();
      if (address.transport === "unix") await Deno.remove(address.path).catch(() => {});
    },
  };
}

function splitUrl(url: string): { path: string; query: URLSearchParams } {
  // Unix-socket requests arrive as http+unix://…; only the path and query matter here.
  const start = url.indexOf("/", url.indexOf("//") + 2);
  const rest = start === -1 ? "/" : url.slice(start);
  const mark = rest.indexOf("?");
  if (mark === -1) return { path: rest, query: new URLSearchParams() };
  return { path: rest.slice(0, mark), query: new URLSearchParams(rest.slice(mark + 1)) };
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...COMMON_HEADERS, ...JSON_HEADERS },
  });
}

function error(status: number, message: string): Response {
  return json(status, { error: message });
}

function text(status: number, body: string, headers: Record<string, string>): Response {
  return new Response(body, { status, headers: { ...COMMON_HEADERS, ...headers } });
}
