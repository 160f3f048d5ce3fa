// One unary gRPC method of Berth's own services: protobuf-es messages in and out, the service's
// answer, and engine errors as gRPC statuses with their messages kept.
import { Buffer } from "node:buffer";
import {
  create,
  type DescMessage,
  type DescService,
  fromBinary,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  EffectFailedError,
  IllegalStateError,
  InvalidRequestError,
  NotFoundError,
  UnavailableError,
} from "../../engine/errors.ts";
import type { AnsweredCall } from "../docker/routes.ts";

/** The gRPC status of an error from the volume service; its message is kept as is. */
export function statusOf(error: unknown): grpc.status {
  if (error instanceof NotFoundError) return grpc.status.NOT_FOUND;
  if (error instanceof InvalidRequestError) return grpc.status.INVALID_ARGUMENT;
  if (error instanceof IllegalStateError || error instanceof EffectFailedError) {
    return grpc.status.FAILED_PRECONDITION;
  }
  if (error instanceof UnavailableError) return grpc.status.UNAVAILABLE;
  return grpc.status.INTERNAL;
}

export type Handler = grpc.handleUnaryCall<Uint8Array, Uint8Array>;

/** Where a method's faults and answered calls are told. */
export type UnaryHooks = {
  /** A fault of Berth's own (answered as INTERNAL), with its detail. */
  report: (message: string) => void;
  /**
   * Every answered call, in the Docker socket's terms (`VolumeDriver.Mount`, the request's fields
   * named as Docker names them), so that both sockets share one call log.
   */
  onCall?: (call: AnsweredCall) => void;
};

/** A request's fields as the Docker protocol names them, for the call log. */
function dockerFields(request: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(request)) {
    if (typeof value !== "string") continue;
    const name = key[0]!.toUpperCase() + key.slice(1);
    fields[name === "Id" ? "ID" : name.replace(/Id$/, "ID")] = value;
  }
  return fields;
}

/** A unary method of `service` whose messages are (de)serialized by protobuf-es. */
export function unary<I extends DescMessage, O extends DescMessage>(
  service: DescService,
  input: I,
  output: O,
  name: string,
  run: (request: MessageShape<I>) => Promise<Parameters<typeof create<O>>[1]>,
  hooks: UnaryHooks,
): [grpc.MethodDefinition<Uint8Array, Uint8Array>, Handler] {
  const { report, onCall } = hooks;
  // berth.v1.VolumeDriver/Mount is the Docker socket's VolumeDriver.Mount.
  const method = `${service.typeName.slice(service.typeName.lastIndexOf(".") + 1)}.${name}`;
  const definition = {
    path: `/${service.typeName}/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (value: Uint8Array) => Buffer.from(value),
    requestDeserialize: (bytes: Buffer) => new Uint8Array(bytes),
    responseSerialize: (value: Uint8Array) => Buffer.from(value),
    responseDeserialize: (bytes: Buffer) => new Uint8Array(bytes),
  };
  const handler: Handler = async (call, done) => {
    let request: MessageShape<I>;
    try {
      request = fromBinary(input, call.request);
    } catch (error) {
      // The caller's bytes, not Berth's fault: no log line, and the reason in the reply.
      const why = error instanceof Error ? error.message : String(error);
      done({ code: grpc.status.INVALID_ARGUMENT, details: `not a ${input.typeName}: ${why}` });
      return;
    }
    const start = performance.now();
    const told = (error: unknown) =>
      onCall?.({
        method,
        status: error === null ? 200 : 500,
        seconds: (performance.now() - start) / 1e3,
        body: dockerFields(request as Record<string, unknown>),
        error,
      });
    try {
      done(null, toBinary(output, create(output, await run(request))));
      told(null);
    } catch (error) {
      told(error);
      const code = statusOf(error);
      const message = error instanceof Error ? error.message : String(error);
      if (code === grpc.status.INTERNAL) report(`${service.typeName}/${name}: ${message}`);
      done({
        code,
        details: code === grpc.status.INTERNAL
          ? "Internal error in Berth; its log has the details"
          : message,
      });
    }
  };
  return [definition, handler];
}

/** Adds `methods` (made by unary()) to `server` as one service. */
export function addMethods(
  server: grpc.Server,
  methods: [grpc.MethodDefinition<Uint8Array, Uint8Array>, Handler][],
) {
  const names = methods.map(([method]) => method.path.slice(method.path.lastIndexOf("/") + 1));
  const definition: grpc.ServiceDefinition = Object.fromEntries(
    methods.map(([method], i) => [names[i]!, method]),
  );
  const handlers: grpc.UntypedServiceImplementation = Object.fromEntries(
    methods.map(([, handler], i) => [names[i]!, handler]),
  );
  server.addService(definition, handlers);
}
