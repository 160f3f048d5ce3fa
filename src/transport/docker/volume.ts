// VolumeDriver.* routes: decode → engine command → wire reply.
import { totalMounts, type VolumeContext } from "../../../machines/volume_machine.ts";
import type { Engine } from "../../engine/engine.ts";
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
import { parse, type Routes } from "./routes.ts";

const volumeId = (name: string) => `volume/${name}`;

/** Volume states in which Docker should see the volume (creation done, removal not done). */
const VISIBLE = new Set(["unmounted", "mounting", "mounted", "unmounting", "removing", "missing"]);

function describe(state: string, context: VolumeContext): VolumeInfo {
  const status: Record<string, unknown> = { state, mounts: totalMounts(context) };
  if (state === "missing") status.problem = context.problem;
  return {
    Name: context.name,
    Mountpoint: context.mountpoint,
    CreatedAt: new Date(context.createdAt).toISOString(),
    Status: status,
  };
}

/** The eight VolumeDriver routes over `engine`. */
export function volumeRoutes(engine: Engine): Routes {
  return {
    async "/VolumeDriver.Create"(body) {
      const { Name, Opts } = parse(CreateRequest, body, "VolumeDriver.Create");
      await engine.dispatch(volumeId(Name), { type: "volume.create", opts: Opts });
      return {};
    },
    async "/VolumeDriver.Remove"(body) {
      const { Name } = parse(NameRequest, body, "VolumeDriver.Remove");
      await engine.dispatch(volumeId(Name), { type: "volume.remove" });
      return {};
    },
    async "/VolumeDriver.Mount"(body): Promise<MountResponse> {
      const { Name, ID } = parse(MountRequest, body, "VolumeDriver.Mount");
      const snapshot = await engine.dispatch(volumeId(Name), { type: "volume.mount", mountId: ID });
      return { Mountpoint: (snapshot.context as VolumeContext).mountpoint };
    },
    async "/VolumeDriver.Unmount"(body) {
      const { Name, ID } = parse(MountRequest, body, "VolumeDriver.Unmount");
      await engine.dispatch(volumeId(Name), { type: "volume.unmount", mountId: ID });
      return {};
    },
    async "/VolumeDriver.Path"(body): Promise<MountResponse> {
      const { Name } = parse(NameRequest, body, "VolumeDriver.Path");
      const context = (await engine.read(volumeId(Name))).context as VolumeContext;
      return { Mountpoint: totalMounts(context) > 0 ? context.mountpoint : "" };
    },
    async "/VolumeDriver.Get"(body): Promise<GetResponse> {
      const { Name } = parse(NameRequest, body, "VolumeDriver.Get");
      const snapshot = await engine.read(volumeId(Name));
      return { Volume: describe(String(snapshot.value), snapshot.context as VolumeContext) };
    },
    "/VolumeDriver.List"(body): ListResponse {
      parse(EmptyRequest, body, "VolumeDriver.List");
      const volumes = engine.list("volume")
        .filter(([, snapshot]) => VISIBLE.has(String(snapshot.value)))
        .map(([, snapshot]) => describe(String(snapshot.value), snapshot.context as VolumeContext));
      volumes.sort((a, b) => a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0);
      return { Volumes: volumes };
    },
    "/VolumeDriver.Capabilities"(body) {
      parse(EmptyRequest, body, "VolumeDriver.Capabilities");
      return CAPABILITIES_RESPONSE;
    },
  };
}
