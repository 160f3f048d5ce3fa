// VolumeDriver.* routes: decode → volume service → wire reply.
import type { VolumeService, VolumeState } from "../../engine/volume_service.ts";
import {
  CAPABILITIES_RESPONSE,
  CreateRequest,
  EmptyRequest,
  type GetResponse,
  type ListResponse,
  MountRequest,
  type MountResponse,
  NameRequest,
  type VolumeInfo,
} from "../../protocol/docker_volume.ts";
import { JsonPieces } from "./respond.ts";
import { parse, type Routes } from "./routes.ts";

function describe(volume: VolumeState): VolumeInfo {
  const status: Record<string, unknown> = { state: volume.state, mounts: volume.mounts };
  if (volume.state === "missing") status.problem = volume.problem;
  if (volume.nodes) status.nodes = volume.nodes;
  return {
    Name: volume.name,
    Mountpoint: volume.mountpoint,
    CreatedAt: new Date(volume.createdAt).toISOString(),
    Status: status,
  };
}

/** How many volumes go into one piece of a List reply. */
const LIST_SLICE = 2000;

/** The text of a ListResponse, in pieces of LIST_SLICE volumes. */
export function* listPieces(states: readonly VolumeState[]): Generator<string> {
  yield '{"Volumes":[';
  for (let start = 0; start < states.length; start += LIST_SLICE) {
    const slice = states.slice(start, start + LIST_SLICE).map(describe);
    const text = JSON.stringify(slice satisfies ListResponse["Volumes"]);
    yield (start === 0 ? "" : ",") + text.slice(1, -1);
  }
  yield "]}";
}

/** The eight VolumeDriver routes over `volumes`. */
/**
 * The VolumeDriver routes; `scope` is what Capabilities says: `global` when the nodes of a cluster
 * share the log, so dockerd asks any of them about any volume.
 */
export function volumeRoutes(volumes: VolumeService, scope: "local" | "global" = "local"): Routes {
  return {
    async "/VolumeDriver.Create"(body) {
      const { Name, Opts } = parse(CreateRequest, body, "VolumeDriver.Create");
      await volumes.create(Name, Opts);
      return {};
    },
    async "/VolumeDriver.Remove"(body) {
      const { Name } = parse(NameRequest, body, "VolumeDriver.Remove");
      await volumes.remove(Name);
      return {};
    },
    async "/VolumeDriver.Mount"(body): Promise<MountResponse> {
      const { Name, ID } = parse(MountRequest, body, "VolumeDriver.Mount");
      return { Mountpoint: await volumes.mount(Name, ID) };
    },
    async "/VolumeDriver.Unmount"(body) {
      const { Name, ID } = parse(MountRequest, body, "VolumeDriver.Unmount");
      await volumes.unmount(Name, ID);
      return {};
    },
    async "/VolumeDriver.Path"(body): Promise<MountResponse> {
      const { Name } = parse(NameRequest, body, "VolumeDriver.Path");
      return { Mountpoint: await volumes.path(Name) };
    },
    async "/VolumeDriver.Get"(body): Promise<GetResponse> {
      const { Name } = parse(NameRequest, body, "VolumeDriver.Get");
      return { Volume: describe(await volumes.get(Name)) };
    },
    async "/VolumeDriver.List"(body): Promise<JsonPieces> {
      parse(EmptyRequest, body, "VolumeDriver.List");
      // Every volume as it is now, then written out a slice at a time as the socket takes it.
      return new JsonPieces(listPieces(await volumes.list()));
    },
    "/VolumeDriver.Capabilities"(body) {
      parse(EmptyRequest, body, "VolumeDriver.Capabilities");
      return scope === "local" ? CAPABILITIES_RESPONSE : { Capabilities: { Scope: "global" } };
    },
  };
}
