// berth.v1.VolumeDriver over gRPC: one RPC per Docker VolumeDriver call, on the same volume
// service as the Docker socket, with the same checks (the request is checked by the Docker
// protocol's own schemas) and the same messages. Engine errors become gRPC statuses.
import { Buffer } from "node:buffer";
import {
  create,
  type DescMessage,
  fromBinary,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { mapOf } from "../../../machines/wire_map.ts";
import {
  EffectFailedError,
  IllegalStateError,
  InvalidRequestError,
  NotFoundError,
  UnavailableError,
} from "../../engine/errors.ts";
import type { VolumeService, VolumeState } from "../../engine/volume_service.ts";
import { CreateRequest, MountRequest, NameRequest } from "../../protocol/docker_volume.ts";
import { parse } from "../docker/routes.ts";
import * as pb from "./gen/berth/v1/volume_pb.ts";

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

type Handler = grpc.handleUnaryCall<Uint8Array, Uint8Array>;

/** A unary method of `service` whose messages are (de)serialized by protobuf-es. */
function unary<I extends DescMessage, O extends DescMessage>(
  input: I,
  output: O,
  name: string,
  run: (request: MessageShape<I>) => Promise<Parameters<typeof create<O>>[1]>,
  report: (message: string) => void,
): [grpc.MethodDefinition<Uint8Array, Uint8Array>, Handler] {
  const definition = {
    path: `/${pb.VolumeDriver.typeName}/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (value: Uint8Array) => Buffer.from(value),
    requestDeserialize: (bytes: Buffer) => new Uint8Array(bytes),
    responseSerialize: (value: Uint8Array) => Buffer.from(value),
    responseDeserialize: (bytes: Buffer) => new Uint8Array(bytes),
  };
  const handler: Handler = async (call, done) => {
    try {
      const request = fromBinary(input, call.request);
      done(null, toBinary(output, create(output, await run(request))));
    } catch (error) {
      const code = statusOf(error);
      const message = error instanceof Error ? error.message : String(error);
      if (code === grpc.status.INTERNAL) report(`berth.v1.VolumeDriver/${name}: ${message}`);
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

function volumeOf(state: VolumeState) {
  return {
    name: state.name,
    mountpoint: state.mountpoint,
    createdAt: BigInt(state.createdAt),
    state: state.state,
    mounts: state.mounts,
    problem: state.problem ?? "",
  };
}

/** Adds berth.v1.VolumeDriver, served by `volumes`, to `server`. */
export function addVolumeDriver(
  server: grpc.Server,
  volumes: VolumeService,
  report: (message: string) => void,
) {
  const methods = [
    unary(pb.CreateVolumeRequestSchema, pb.CreateVolumeResponseSchema, "Create", async (r) => {
      // The Docker protocol's own check: name rules, options bounded, every key kept.
      const { Name, Opts } = parse(
        CreateRequest,
        { Name: r.name, Opts: mapOf(Object.entries(r.options)) },
        "VolumeDriver.Create",
      );
      await volumes.create(Name, Opts);
      return {};
    }, report),
    unary(pb.VolumeNameSchema, pb.RemoveVolumeResponseSchema, "Remove", async (r) => {
      await volumes.remove(parse(NameRequest, { Name: r.name }, "VolumeDriver.Remove").Name);
      return {};
    }, report),
    unary(pb.MountRequestSchema, pb.MountResponseSchema, "Mount", async (r) => {
      const { Name, ID } = parse(MountRequest, { Name: r.name, ID: r.id }, "VolumeDriver.Mount");
      return { mountpoint: await volumes.mount(Name, ID) };
    }, report),
    unary(pb.MountRequestSchema, pb.UnmountResponseSchema, "Unmount", async (r) => {
      const { Name, ID } = parse(MountRequest, { Name: r.name, ID: r.id }, "VolumeDriver.Unmount");
      await volumes.unmount(Name, ID);
      return {};
    }, report),
    unary(pb.VolumeNameSchema, pb.MountResponseSchema, "Path", async (r) => {
      const { Name } = parse(NameRequest, { Name: r.name }, "VolumeDriver.Path");
      return { mountpoint: await volumes.path(Name) };
    }, report),
    unary(pb.VolumeNameSchema, pb.VolumeSchema, "Get", async (r) => {
      return volumeOf(
        await volumes.get(parse(NameRequest, { Name: r.name }, "VolumeDriver.Get").Name),
      );
    }, report),
    unary(pb.ListVolumesRequestSchema, pb.ListVolumesResponseSchema, "List", async () => {
      return {
        volumes: (await volumes.list()).map((state) => create(pb.VolumeSchema, volumeOf(state))),
      };
    }, report),
  ];
  const names = methods.map(([method]) => method.path.slice(method.path.lastIndexOf("/") + 1));
  const definition: grpc.ServiceDefinition = Object.fromEntries(
    methods.map(([method], i) => [names[i]!, method]),
  );
  const handlers: grpc.UntypedServiceImplementation = Object.fromEntries(
    methods.map(([, handler], i) => [names[i]!, handler]),
  );
  server.addService(definition, handlers);
}
