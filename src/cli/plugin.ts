// `berth plugin`: Berth launched by a HashiCorp go-plugin host. The handshake decides (cookie,
// app version, AutoMTLS), the gRPC services listen on a unix socket, and only then the one
// handshake line goes to stdout; nothing else ever does. Stops on Shutdown or a signal.
import { join } from "node:path";
import { startBerth } from "../start_berth.ts";
import { setUpAutoMtls } from "../transport/goplugin/auto_mtls.ts";
import { handshakeLine, negotiate } from "../transport/goplugin/handshake.ts";
import { serveGoPlugin } from "../transport/goplugin/server.ts";
import { addIpamDriver } from "../transport/goplugin/ipam_driver.ts";
import { addNetworkDriver } from "../transport/goplugin/network_driver.ts";
import { addVolumeDriver } from "../transport/goplugin/volume_driver.ts";
import {
  type Command,
  CommandError,
  diagnose,
  diagnoseAsHclog,
  out,
  setLogging,
} from "./_command.ts";
import { missingPrivileges } from "./_privileges.ts";
import { logCall, parseServe } from "./serve.ts";

const HELP = `Usage: berth plugin [serve options]

Berth as a HashiCorp go-plugin plugin: meant to be launched by a go-plugin host (Terraform-style
Go programs built with plugin.NewClient), not by hand. The host sets the magic cookie
BERTH_PLUGIN=berth-driver-engine and PLUGIN_PROTOCOL_VERSIONS; Berth speaks app protocol
version 1. It listens on a unix socket in PLUGIN_UNIX_SOCKET_DIR (else TMPDIR, else /tmp), then
prints the handshake line "1|1|unix|<socket>|grpc|" on stdout, and nothing else ever.

AutoMTLS (the host sets PLUGIN_CLIENT_CERT to its certificate, PEM): Berth makes a one-time
self-signed certificate for "localhost" (ECDSA P-256), serves TLS that only that client
certificate passes, and prints its own certificate's DER, base64 without padding, as the line's
sixth field. A PLUGIN_CLIENT_CERT that does not parse: one line on stderr, exit 1.

gRPC services: grpc.health.v1.Health (SERVING for "plugin"), plugin.GRPCController (Shutdown:
calls in flight finish, the log is synced, the sockets removed, exit 0), plugin.GRPCStdio and
plugin.GRPCBroker (held open; Berth sends nothing on them), and Berth's own berth.v1.VolumeDriver,
berth.v1.IpamDriver and berth.v1.NetworkDriver (proto/berth/v1/): one RPC per Docker call that
changes state or reads it, on the same engine and log, with the same messages; errors as gRPC
statuses (refused: FAILED_PRECONDITION, NOT_FOUND, INVALID_ARGUMENT, the log failing: UNAVAILABLE).

Takes the options of "berth serve" (see berth serve --help): --state-dir, the snapshot and limit
options, and --socket PATH to serve the Docker plugin socket too, from the same engine and log
(none unless asked for). The admin endpoint is off unless --admin is given.

Diagnostics go to stderr as JSON lines in go-plugin's hclog shape, so the host logs them at their
level. SIGINT is ignored (a Ctrl-C in the host's terminal reaches its plugins too); SIGTERM stops
Berth cleanly. Without the cookie, one sentence on stderr, exit 1.

Options:
  -h, --help         show this help
`;

async function plugin(args: string[]): Promise<number> {
  const launch = negotiate((name) => Deno.env.get(name));
  if (!launch.ok) {
    // No cookie: a person ran it, say so plainly. A version mismatch: a host is listening.
    if (Deno.env.get("BERTH_PLUGIN") !== undefined) diagnoseAsHclog();
    throw new CommandError(launch.message);
  }
  diagnoseAsHclog();
  // Before anything starts: a certificate that does not parse stops Berth with nothing printed.
  const clientCert = Deno.env.get("PLUGIN_CLIENT_CERT");
  const mtls = clientCert ? await setUpAutoMtls(clientCert) : null;
  if (mtls && !mtls.ok) throw new CommandError(mtls.message);
  const config = parseServe(args);
  setLogging({ level: config.logLevel }); // the format stays go-plugin's
  const missing = missingPrivileges();
  if (missing) throw new CommandError(missing);
  const dockerSocket = args.includes("--socket") || Deno.env.get("BERTH_SOCKET") !== undefined;
  const adminAsked = args.includes("--admin") || Deno.env.get("BERTH_ADMIN") !== undefined;
  const stop = Promise.withResolvers<string>();
  // A Ctrl-C in the host's terminal reaches its plugins too: like go-plugin's own plugins,
  // Berth ignores SIGINT and leaves stopping to the host (Shutdown, then SIGKILL) or SIGTERM.
  const handlers = [
    ["SIGINT", () => diagnose("INFO", "SIGINT ignored: the go-plugin host decides when to stop")],
    ["SIGTERM", () => stop.resolve("SIGTERM")],
  ] as const;
  for (const [signal, handler] of handlers) Deno.addSignalListener(signal, handler);
  try {
    const berth = await startBerth({
      socket: dockerSocket ? config.socket : null,
      stateDir: config.stateDir,
      volumesDir: config.volumesDir,
      ...(adminAsked && config.admin ? { admin: config.admin } : {}),
      poolRange: config.poolRange,
      poolPrefix: config.poolPrefix,
      repairOrphans: config.repairOrphans,
      checkpoints: config.checkpoints,
      pluginLimits: config.pluginLimits,
      backends: config.backends,
      logTimeoutMs: config.logTimeoutMs,
      warn: (message) => diagnose("WARN", message),
      report: (message) => diagnose("ERROR", message),
      onCall: logCall,
    });
    let server;
    try {
      const report = (message: string) => diagnose("ERROR", message);
      server = await serveGoPlugin(socketPath(), (grpcServer) => {
        const hooks = { report, onCall: logCall };
        addVolumeDriver(grpcServer, berth.volumes, hooks);
        addIpamDriver(grpcServer, berth.ipam, hooks);
        addNetworkDriver(grpcServer, berth.networks, hooks);
      }, mtls?.ok ? { tls: mtls.tls } : {});
    } catch (error) {
      await berth.stop();
      throw error;
    }
    server.shutdownRequested.then(() => stop.resolve("the host's Shutdown"));
    // Listening first, the line second: the host dials as soon as it reads it.
    out(handshakeLine({
      app: launch.version,
      network: "unix",
      address: server.path,
      protocol: "grpc",
      cert: mtls?.ok ? mtls.certField : "",
    }));
    diagnose(
      "INFO",
      `serving go-plugin on ${server.path}` + (mtls ? " with AutoMTLS" : "") +
        (dockerSocket ? ` and ${config.socket}` : "") +
        ` (state ${config.stateDir}, ${berth.store.lastSeq} events)`,
    );
    const why = await stop.promise;
    diagnose("INFO", `${why}: finishing calls in flight`);
    await server.close();
    await berth.stop();
    diagnose("INFO", `stopped; log synced at event ${berth.store.lastSeq}`);
    return 0;
  } finally {
    for (const [name, handler] of handlers) Deno.removeSignalListener(name, handler);
  }
}

/** `plugin<random digits>` in PLUGIN_UNIX_SOCKET_DIR, else TMPDIR, else /tmp, as Go plugins do. */
function socketPath(): string {
  const dir = Deno.env.get("PLUGIN_UNIX_SOCKET_DIR") || Deno.env.get("TMPDIR") || "/tmp";
  const digits = crypto.getRandomValues(new Uint32Array(1))[0]!;
  return join(dir, `plugin${digits}`);
}

export const pluginCommand: Command = {
  name: "plugin",
  summary: "run as a HashiCorp go-plugin plugin (launched by a Go host)",
  help: HELP,
  run: plugin,
};
