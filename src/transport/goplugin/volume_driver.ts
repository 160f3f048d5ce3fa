// berth.v1.VolumeDriver over gRPC: one RPC per Docker VolumeDriver call, on the same volume
// service as the Docker socket, with the same checks (the request is checked by the Docker
// protocol's own schemas) and the same messages. Engine errors become gRPC statuses.
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { mapOf } from "../../../machines/wire_map.ts";
import type { VolumeService, VolumeState } from "../../engine/volume_service.ts";
import { CreateRequest, MountRequest, NameRequest } from "../../protocol/docker_volume.ts";
import { parse } from "../docker/routes.ts";
import * as pb from "./gen/berth/v1/volume_pb.ts";
import { addMethods, unary, type UnaryHooks } from "./_unary.ts";

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
  hooks: UnaryHooks,
) {
  const methods = [
    unary(
      pb.VolumeDriver,
      pb.CreateVolumeRequestSchema,
      pb.CreateVolumeResponseSchema,
      "Create",
      async (r) => {
        // The Docker protocol's own check: name rules, options bounded, every key kept.
        const { Name, Opts } = parse(
          CreateRequest,
          { Name: r.name, Opts: mapOf(Object.entries(r.options)) },
          "VolumeDriver.Create",
        );
        await volumes.create(Name, Opts);
        return {};
      },
      hooks,
    ),
    unary(
      pb.VolumeDriver,
      pb.VolumeNameSchema,
      pb.RemoveVolumeResponseSchema,
      "Remove",
      async (r) => {
        await volumes.remove(parse(NameRequest, { Name: r.name }, "VolumeDriver.Remove").Name);
        return {};
      },
      hooks,
    ),
    unary(pb.VolumeDriver, pb.MountRequestSchema, pb.MountResponseSchema, "Mount", async (r) => {
      const { Name, ID } = parse(MountRequest, { Name: r.name, ID: r.id }, "VolumeDriver.Mount");
      return { mountpoint: await volumes.mount(Name, ID) };
    }, hooks),
    unary(
      pb.VolumeDriver,
      pb.MountRequestSchema,
      pb.UnmountResponseSchema,
      "Unmount",
      async (r) => {
        const { Name, ID } = parse(
          MountRequest,
          { Name: r.name, ID: r.id },
          "VolumeDriver.Unmount",
        );
        await volumes.unmount(Name, ID);
        return {};
      },
      hooks,
    ),
    unary(pb.VolumeDriver, pb.VolumeNameSchema, pb.MountResponseSchema, "Path", async (r) => {
      const { Name } = parse(NameRequest, { Name: r.name }, "VolumeDriver.Path");
      return { mountpoint: await volumes.path(Name) };
    }, hooks),
    unary(pb.VolumeDriver, pb.VolumeNameSchema, pb.VolumeSchema, "Get", async (r) => {
      return volumeOf(
        await volumes.get(parse(NameRequest, { Name: r.name }, "VolumeDriver.Get").Name),
      );
    }, hooks),
    unary(
      pb.VolumeDriver,
      pb.ListVolumesRequestSchema,
      pb.ListVolumesResponseSchema,
      "List",
      async () => {
        return {
          volumes: (await volumes.list()).map((state) => create(pb.VolumeSchema, volumeOf(state))),
        };
      },
      hooks,
    ),
  ];
  addMethods(server, methods);
}
