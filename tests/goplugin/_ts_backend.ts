// A go-plugin volume backend in TypeScript, for tests: serves berth.v1.VolumeBackend, keeping each
// volume as a directory under the root given as its argument, and writes its pid to <root>/pid.
// Launched by Berth (--config) with the BERTH_BACKEND cookie. The Go backend is to come.
import { join } from "node:path";
import * as pb from "../../src/transport/goplugin/gen/berth/v1/backend_pb.ts";
import { serveGoPlugin } from "../../src/transport/goplugin/server.ts";
import { addMethods, unary } from "../../src/transport/goplugin/_unary.ts";

const root = Deno.args[0]!;
if (Deno.env.get("BERTH_BACKEND") !== "berth-volume-backend") {
  Deno.stderr.writeSync(new TextEncoder().encode("launch me from Berth (--config)\n"));
  Deno.exit(1);
}
await Deno.mkdir(root, { recursive: true });
await Deno.writeTextFile(join(root, "pid"), String(Deno.pid));
const dir = (name: string) => join(root, "volumes", name);
const exists = (path: string) => Deno.stat(path).then(() => true, () => false);
const report = { report: () => {} };
const server = await serveGoPlugin(join(root, `plugin${Deno.pid}`), (grpc) =>
  addMethods(grpc, [
    unary(
      pb.VolumeBackend,
      pb.BackendCreateRequestSchema,
      pb.BackendMountpointSchema,
      "Create",
      async (r) => {
        await Deno.mkdir(dir(r.name), { recursive: true });
        return { mountpoint: dir(r.name) };
      },
      report,
    ),
    unary(
      pb.VolumeBackend,
      pb.BackendVolumeSchema,
      pb.BackendMountpointSchema,
      "Mount",
      async (r) => {
        if (!await exists(dir(r.name))) throw new Error(`no volume ${r.name} here`);
        return { mountpoint: dir(r.name) };
      },
      report,
    ),
    unary(pb.VolumeBackend, pb.BackendVolumeSchema, pb.BackendDoneSchema, "Unmount", () =>
      Promise.resolve({}), report),
    unary(pb.VolumeBackend, pb.BackendVolumeSchema, pb.BackendDoneSchema, "Remove", async (r) => {
      await Deno.remove(dir(r.name), { recursive: true }).catch(() => {});
      return {};
    }, report),
    unary(
      pb.VolumeBackend,
      pb.BackendSurveyRequestSchema,
      pb.BackendSurveyResponseSchema,
      "Survey",
      async () => {
        const volumes = [];
        await Deno.mkdir(join(root, "volumes"), { recursive: true });
        for await (const entry of Deno.readDir(join(root, "volumes"))) {
          volumes.push({ name: entry.name, mountpoint: dir(entry.name) });
        }
        return { volumes };
      },
      report,
    ),
  ]));
Deno.stdout.writeSync(new TextEncoder().encode(`1|1|unix|${server.path}|grpc|\n`));
await server.shutdownRequested;
await server.close();
Deno.exit(0);
