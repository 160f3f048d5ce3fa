// Patterns beside the held one, on Berth and the in-memory Go baseline in the same run:
// accumulating mounts (fresh mount IDs pile up on 64 volumes, 20,000 in all, then every one is
// unmounted) and List with 100,000 volumes (and a held Mount/Unmount running beside the Lists).
import { join } from "node:path";
import { writeBigLog } from "../tests/helpers/big_log.ts";
import type { PluginClient } from "../tests/helpers/plugin_client.ts";
import {
  closeAll,
  connectAll,
  type Context,
  failOnErrors,
  MAX_CLIENTS,
  progress,
  SECONDS,
  withCpu,
} from "./_context.ts";
import { buildGoBaseline, goVersion, spawnGoBaseline } from "./_go_baseline.ts";
import { type ServerProcess, spawnBerth } from "./_process.ts";
import { countLogEvents, settle } from "./_start_time.ts";
import { expectEmpty, expectMountpoint, runPhase, type Unit } from "./_workloads.ts";

const ACCUMULATED = 20_000;
const LISTED = 100_000;

type Server = { label: string; process: ServerProcess; stateDir: string | null };

async function timed(
  ctx: Context,
  server: Server,
  clients: PluginClient[],
  spec: { workload: string; count: number; unitsPerClient?: number; unit: Unit },
) {
  const before = server.stateDir ? await countLogEvents(server.stateDir) : 0;
  const length = spec.unitsPerClient === undefined
    ? { seconds: SECONDS }
    : { unitsPerClient: spec.unitsPerClient };
  const measured = await withCpu(
    server.process,
    () => runPhase(spec.workload, clients, spec.count, length, spec.unit),
  );
  const records = server.stateDir ? (await countLogEvents(server.stateDir)) - before : null;
  ctx.results.rows.push({ server: server.label, records, ...measured });
  const { phase } = measured;
  progress(
    `${server.label}: ${spec.workload} × ${spec.count}: ` +
      `${(phase.calls / phase.seconds).toFixed(0)} calls/s`,
  );
  failOnErrors(phase);
}

/** 64 volumes acc-c0…; each client mounts its share of fresh IDs, then unmounts them all. */
async function accumulate(ctx: Context, server: Server, clients: PluginClient[]) {
  for (let c = 0; c < MAX_CLIENTS; c++) {
    expectEmpty(await clients[c]!.call("/VolumeDriver.Create", { Name: `acc-c${c}`, Opts: null }));
  }
  const perClient = Math.ceil(ACCUMULATED / MAX_CLIENTS);
  const id = (client: number, i: number) => `acc-${client}-${i}`;
  await timed(ctx, server, clients, {
    workload: `accumulate: Mount of fresh IDs, 64 volumes, to ${ACCUMULATED.toLocaleString("en")}`,
    count: MAX_CLIENTS,
    unitsPerClient: perClient,
    unit: async (call, client, i) => {
      await call(
        "/VolumeDriver.Mount",
        { Name: `acc-c${client}`, ID: id(client, i) },
        expectMountpoint,
      );
    },
  });
  await timed(ctx, server, clients, {
    workload: "accumulate: then Unmount of every one",
    count: MAX_CLIENTS,
    unitsPerClient: perClient,
    unit: async (call, client, i) => {
      await call(
        "/VolumeDriver.Unmount",
        { Name: `acc-c${client}`, ID: id(client, i) },
        expectEmpty,
      );
    },
  });
}

/**
 * List at 1 client; then a held Mount/Unmount at 64 clients while curl, in its own process (a
 * 16 MB reply parsed in the bench process would stall the bench's own clients), Lists in a loop.
 */
async function listMany(ctx: Context, server: Server, clients: PluginClient[]) {
  const list: Unit = async (call) => {
    await call("/VolumeDriver.List", {}, (reply) => {
      const volumes = (reply.body as { Volumes?: unknown[] } | null)?.Volumes;
      if (reply.status !== 200 || !Array.isArray(volumes) || volumes.length < LISTED) {
        throw new Error(`List: ${reply.status}, ${volumes?.length ?? "no"} volumes`);
      }
    });
  };
  await timed(ctx, server, clients, {
    workload: `List of ${LISTED.toLocaleString("en")} volumes`,
    count: 1,
    unit: list,
  });
  const name = (client: number) => client === 0 ? "busy" : `busy-${client}`;
  for (let c = 0; c < MAX_CLIENTS; c++) {
    expectMountpoint(
      await clients[c]!.call("/VolumeDriver.Mount", { Name: name(c), ID: "holder" }),
    );
  }
  const lister = new Deno.Command("sh", {
    args: [
      "-c",
      `while :; do curl -s -o /dev/null -w '%{http_code}\\n' -X POST --unix-socket ` +
      `'${server.process.socket}' http://plugin/VolumeDriver.List; done`,
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const output = new Response(lister.stdout).text();
  try {
    await timed(ctx, server, clients, {
      workload: `Mount/Unmount (held) while curl Lists ${LISTED.toLocaleString("en")} in a loop`,
      count: MAX_CLIENTS,
      unit: async (call, client, i) => {
        const ID = `l-${client}-${i}`;
        await call("/VolumeDriver.Mount", { Name: name(client), ID }, expectMountpoint);
        await call("/VolumeDriver.Unmount", { Name: name(client), ID }, expectEmpty);
      },
    });
  } finally {
    lister.kill("SIGKILL");
    await lister.status;
  }
  const lists = (await output).split("\n").filter((code) => code === "200").length;
  ctx.results.notes.push(
    `${server.label}: ${lists} Lists of ${LISTED.toLocaleString("en")} volumes answered during ` +
      `the held phase beside them (${SECONDS} s).`,
  );
}

export async function runPatternPhases(ctx: Context) {
  // Berth: accumulate on a fresh state dir; List on one whose log made 100,000 volumes.
  {
    const stateDir = join(ctx.dir, "state-accumulate");
    const socket = join(ctx.dir, "accumulate.sock");
    const process = spawnBerth(ctx.tracker, { socket, stateDir });
    await process.ready();
    await settle(process);
    const clients = await connectAll(ctx, socket, MAX_CLIENTS);
    await accumulate(ctx, { label: "Berth", process, stateDir }, clients);
    closeAll(clients);
    await process.stop();
  }
  {
    const stateDir = join(ctx.dir, "state-list");
    progress(`writing a log of ${LISTED} volumes`);
    await writeBigLog(stateDir, 2 * LISTED, LISTED);
    const socket = join(ctx.dir, "list.sock");
    const process = spawnBerth(ctx.tracker, { socket, stateDir });
    await process.ready(120_000);
    await settle(process);
    const clients = await connectAll(ctx, socket, MAX_CLIENTS);
    await listMany(ctx, { label: "Berth", process, stateDir }, clients);
    closeAll(clients);
    await process.stop();
  }
  if (await goVersion() === null) {
    ctx.results.notes.push("Patterns on the Go baseline skipped: no `go`.");
    return;
  }
  const binary = await buildGoBaseline(ctx.dir);
  const socket = join(ctx.dir, "go-patterns.sock");
  const process = spawnGoBaseline(ctx.tracker, binary, socket);
  await process.ready();
  const clients = await connectAll(ctx, socket, MAX_CLIENTS);
  const go: Server = { label: "Go baseline (memory)", process, stateDir: null };
  await accumulate(ctx, go, clients);
  progress(`creating ${LISTED} volumes on the Go baseline`);
  failOnErrors(
    await runPhase(
      "fill",
      clients,
      MAX_CLIENTS,
      { unitsPerClient: LISTED / MAX_CLIENTS },
      async (call, client, i) => {
        const n = client * (LISTED / MAX_CLIENTS) + i;
        await call(
          "/VolumeDriver.Create",
          { Name: n === 0 ? "busy" : `busy-${n}`, Opts: null },
          expectEmpty,
        );
      },
    ),
  );
  await listMany(ctx, go, clients);
  closeAll(clients);
  await process.stop();
}
