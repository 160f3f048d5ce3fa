// The plugin socket: Deno.serve on a unix socket under /run/docker/plugins/.
// A stale socket file left by a crash is replaced; a live one (another process) is not.
import { dirname } from "node:path";
import { PLUGIN_INTERFACES } from "../../protocol/docker_plugin.ts";
import { clearStaleSocket, SocketInUseError } from "../_unix_socket.ts";
import { createRouter, type Routes } from "./routes.ts";

export { SocketInUseError };

export type PluginServer = {
  path: string;
  /** Stops accepting, lets requests in flight finish, removes the socket file. */
  shutdown(): Promise<void>;
};

export type ServeOptions = {
  path: string;
  routes: Routes;
  report: (message: string) => void;
  /** Hears every answered call (metrics); see RouteOptions. */
  onCall?: (method: string, status: number, seconds: number) => void;
};

/** Starts answering dockerd on `options.path`; resolves once the socket accepts connections. */
export async function servePlugin(options: ServeOptions): Promise<PluginServer> {
  const { path, report } = options;
  await Deno.mkdir(dirname(path), { recursive: true });
  await clearStaleSocket(path);
  const paths = Object.keys(options.routes);
  const activate = {
    Implements: PLUGIN_INTERFACES.filter((name) => paths.some((p) => p.startsWith(`/${name}.`))),
  };
  const routes: Routes = { "/Plugin.Activate": () => activate, ...options.routes };
  const route = createRouter(routes, {
    report,
    ...(options.onCall === undefined ? {} : { onCall: options.onCall }),
  });
  const listening = Promise.withResolvers<void>();
  const server = Deno.serve({
    path,
    onListen: () => listening.resolve(),
    onError: (error) => {
      report(error instanceof Error ? (error.stack ?? error.message) : String(error));
      return new Response(JSON.stringify({ Err: "Internal error in Berth" }), { status: 500 });
    },
  }, route);
  await listening.promise;
  await Deno.chmod(path, 0o660);
  return {
    path,
    async shutdown() {
      await server.shutdown();
      await Deno.remove(path).catch(() => {});
    },
  };
}
