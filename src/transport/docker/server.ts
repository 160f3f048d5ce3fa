// The plugin socket: Deno.serve on a unix socket under /run/docker/plugins/.
// A stale socket file left by a crash is replaced; a live one (another process) is not.
import { dirname } from "node:path";
import { PLUGIN_INTERFACES } from "../../protocol/docker_plugin.ts";
import { createRouter, type Routes } from "./routes.ts";

/** Someone else answers on the socket path. */
export class SocketInUseError extends Error {
  override name = "SocketInUseError";
}

export type PluginServer = {
  path: string;
  /** Stops accepting, lets requests in flight finish, removes the socket file. */
  shutdown(): Promise<void>;
};

export type ServeOptions = {
  path: string;
  routes: Routes;
  report: (message: string) => void;
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
  const route = createRouter(routes, { report });
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

async function clearStaleSocket(path: string) {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (!info.isSocket) {
    throw new SocketInUseError(`Cannot listen on ${path}: a file that is not a socket is there`);
  }
  try {
    const connection = await Deno.connect({ transport: "unix", path });
    connection.close();
    throw new SocketInUseError(`Cannot listen on ${path}: another process is listening there`);
  } catch (error) {
    if (error instanceof SocketInUseError) throw error;
    // Nobody answers: the file is left over from a crash.
    await Deno.remove(path);
  }
}
