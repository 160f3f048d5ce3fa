// The gRPC side of `berth plugin`: what a go-plugin host needs of a plugin to start it, ping it
// and stop it (../shared/protocol/go-plugin.md §6), served with @grpc/grpc-js on a unix socket,
// beside Berth's own services.
// grpc.health.v1.Health answers SERVING for "plugin"; plugin.GRPCController/Shutdown asks Berth
// to stop; plugin.GRPCStdio and plugin.GRPCBroker hold their streams open and send nothing
// (Berth writes nothing to stdout after the handshake, and offers no brokered services).
// Cleartext HTTP/2 unless given AutoMTLS material (auto_mtls.ts): then TLS, client cert required.
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import { decodeHealthRequest, encodeHealthResponse, ServingStatus } from "./_messages.ts";

export type GoPluginServer = {
  /** The unix socket it listens on. */
  path: string;
  /** Settles when the host asked for a shutdown (GRPCController/Shutdown). */
  shutdownRequested: Promise<void>;
  /** Ends the held streams, lets unary calls finish, stops serving, removes the socket. */
  close(): Promise<void>;
};

/** TLS for go-plugin's AutoMTLS: only a client holding `clientCertPem` gets in. */
export type ServerTls = {
  /** The host's certificate, PEM: the one CA a client certificate must chain to. */
  clientCertPem: string;
  certPem: string;
  keyPem: string;
};

/** A method whose messages pass as raw bytes; the handlers encode and decode them. */
function method(path: string, requestStream: boolean, responseStream: boolean) {
  return {
    path,
    requestStream,
    responseStream,
    requestSerialize: (value: Uint8Array) => Buffer.from(value),
    requestDeserialize: (bytes: Buffer) => new Uint8Array(bytes),
    responseSerialize: (value: Uint8Array) => Buffer.from(value),
    responseDeserialize: (bytes: Buffer) => new Uint8Array(bytes),
  };
}

const HEALTH = {
  Check: method("/grpc.health.v1.Health/Check", false, false),
  Watch: method("/grpc.health.v1.Health/Watch", false, true),
};
const CONTROLLER = { Shutdown: method("/plugin.GRPCController/Shutdown", false, false) };
const STDIO = { StreamStdio: method("/plugin.GRPCStdio/StreamStdio", false, true) };
const BROKER = { StartStream: method("/plugin.GRPCBroker/StartStream", true, true) };

/** The services go-plugin names and their health status: only "plugin" (and "", the server). */
function statusOf(service: string): ServingStatus | null {
  return service === "plugin" || service === "" ? ServingStatus.SERVING : null;
}

const EMPTY = new Uint8Array(0);

/**
 * Listens on `path` (a stale file there is replaced) and serves until close(); `addServices`
 * adds Berth's own services (berth.v1.VolumeDriver) to the same server. With `tls`, serves TLS
 * and refuses a connection without the host's client certificate.
 */
export async function serveGoPlugin(
  path: string,
  addServices: (server: grpc.Server) => void = () => {},
  options: { tls?: ServerTls } = {},
): Promise<GoPluginServer> {
  const server = new grpc.Server();
  addServices(server);
  type HeldStream =
    | grpc.ServerWritableStream<Uint8Array, Uint8Array>
    | grpc.ServerDuplexStream<Uint8Array, Uint8Array>;
  const held = new Set<HeldStream>();
  const shutdown = Promise.withResolvers<void>();
  const hold = (call: HeldStream) => {
    held.add(call);
    call.on("cancelled", () => held.delete(call));
    call.on("error", () => held.delete(call));
  };

  server.addService(HEALTH, {
    Check(
      call: grpc.ServerUnaryCall<Uint8Array, Uint8Array>,
      done: grpc.sendUnaryData<Uint8Array>,
    ) {
      const service = decodeHealthRequest(call.request);
      const status = statusOf(service);
      if (status === null) {
        done({
          code: grpc.status.NOT_FOUND,
          details: `unknown service ${JSON.stringify(service)}`,
        });
      } else done(null, encodeHealthResponse(status));
    },
    Watch(call: grpc.ServerWritableStream<Uint8Array, Uint8Array>) {
      const status = statusOf(decodeHealthRequest(call.request)) ?? ServingStatus.SERVICE_UNKNOWN;
      call.write(encodeHealthResponse(status));
      hold(call);
    },
  });
  server.addService(CONTROLLER, {
    Shutdown(_call: unknown, done: grpc.sendUnaryData<Uint8Array>) {
      done(null, EMPTY);
      shutdown.resolve();
    },
  });
  server.addService(STDIO, { StreamStdio: hold });
  server.addService(BROKER, {
    StartStream(call: grpc.ServerDuplexStream<Uint8Array, Uint8Array>) {
      call.on("data", () => {}); // no brokered services: what the host sends is not needed
      hold(call);
    },
  });

  const { tls } = options;
  const credentials = tls
    ? grpc.ServerCredentials.createSsl(
      Buffer.from(tls.clientCertPem),
      [{ cert_chain: Buffer.from(tls.certPem), private_key: Buffer.from(tls.keyPem) }],
      true,
    )
    : grpc.ServerCredentials.createInsecure();
  await Deno.remove(path).catch(() => {});
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${path}`, credentials, (error) => error ? reject(error) : resolve())
  );
  await Deno.chmod(path, 0o600);
  return {
    path,
    shutdownRequested: shutdown.promise,
    async close() {
      for (const call of held) call.end();
      held.clear();
      await new Promise<void>((resolve) => {
        // Unary calls in flight finish; anything still open after a second is cut.
        const timer = setTimeout(() => server.forceShutdown(), 1000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await Deno.remove(path).catch(() => {});
    },
  };
}
