// The plugin socket: Berth's own HTTP/1.1 server (_http1.ts) on a unix socket under
// /run/docker/plugins/, with caps on connections, sizes and time that Deno.serve does not offer.
// A stale socket file left by a crash is replaced; a live one (another process) is not.
import { dirname } from "node:path";
import {
  PLUGIN_CONTENT_TYPE,
  PLUGIN_INTERFACES,
  wantsErrorKey,
} from "../../protocol/docker_plugin.ts";
import { type HttpLimits, serveHttp1, type StreamListener } from "../_http1.ts";
import { listenOnFd } from "../_inherited_socket.ts";
import { clearStaleSocket, SocketInUseError } from "../_unix_socket.ts";
import { replyError } from "./respond.ts";
import { type AnsweredCall, createRouter, type Routes } from "./routes.ts";

export { SocketInUseError };

export type PluginServer = {
  path: string;
  /** Connections open now, and those refused because the cap was reached. */
  connections(): { open: number; refused: number };
  /** Stops accepting, lets requests in flight finish, removes the socket file. */
  shutdown(): Promise<void>;
};

export type ServeOptions = {
  path: string;
  routes: Routes;
  report: (message: string) => void;
  /** Hears every answered call (metrics, the call log). */
  onCall?: (call: AnsweredCall) => void;
  /** Overrides of DEFAULT_LIMITS. */
  limits?: Partial<HttpLimits>;
  /**
   * A listening socket passed by systemd (socket activation) to serve instead of making one at
   * `path`: its file is systemd's, so it is neither replaced nor removed.
   */
  inheritedFd?: number;
};

/** Files Berth keeps for itself beyond its connections: log, snapshots, `ip`, admin clients. */
const RESERVED_FILES = 256;

/** The soft limit on open files (Deno raises it to the hard limit at start); 1024 if unknown. */
export function openFileLimit(): number {
  try {
    const line = Deno.readTextFileSync("/proc/self/limits").split("\n")
      .find((text) => text.startsWith("Max open files"));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isInteger(soft) && soft > 0 ? soft : 1024;
  } catch {
    return 1024;
  }
}

/** Limits unless the operator says otherwise. dockerd keeps up to 6 idle connections a plugin. */
export function defaultLimits(): HttpLimits {
  return {
    maxConnections: Math.max(16, Math.min(16_384, openFileLimit() - RESERVED_FILES)),
    maxHeadBytes: 16 * 1024,
    maxBodyBytes: 1024 * 1024,
    // dockerd drops an idle connection after 30 s; a longer wait never cuts one it still uses.
    idleTimeoutMs: 120_000,
    requestTimeoutMs: 10_000,
  };
}

/** Starts answering dockerd on `options.path`; resolves once the socket accepts connections. */
export async function servePlugin(options: ServeOptions): Promise<PluginServer> {
  const { path, report } = options;
  const paths = Object.keys(options.routes);
  const activate = {
    Implements: PLUGIN_INTERFACES.filter((name) => paths.some((p) => p.startsWith(`/${name}.`))),
  };
  const routes: Routes = { "/Plugin.Activate": () => activate, ...options.routes };
  const handle = createRouter(routes, {
    report,
    ...(options.onCall === undefined ? {} : { onCall: options.onCall }),
  });
  const inherited = options.inheritedFd;
  let listener: StreamListener;
  if (inherited === undefined) {
    await Deno.mkdir(dirname(path), { recursive: true });
    await clearStaleSocket(path);
    listener = Deno.listen({ transport: "unix", path });
    await Deno.chmod(path, 0o660);
  } else listener = await listenOnFd(inherited);
  const server = serveHttp1(listener, {
    limits: { ...defaultLimits(), ...options.limits },
    contentType: PLUGIN_CONTENT_TYPE,
    handle,
    refusal: (status, message, requestPath) =>
      replyError(status, message, wantsErrorKey(requestPath)),
    report,
  });
  return {
    path,
    connections: () => ({ open: server.connections, refused: server.refusedConnections }),
    async shutdown() {
      await server.shutdown();
      if (inherited === undefined) await Deno.remove(path).catch(() => {});
    },
  };
}
