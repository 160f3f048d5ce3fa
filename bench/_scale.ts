// Cost per event against entity size: Mount/Unmount of a fresh ID on a volume that 10,000 other
// mount IDs hold, against the same on a volume held by one, at 1 and 64 clients, on one Berth.
import { join } from "node:path";
import {
  berthPhase,
  connectAll,
  type Context,
  failOnErrors,
  MAX_CLIENTS,
  progress,
  SECONDS,
  stopBerth,
} from "./_context.ts";
import { spawnBerth } from "./_process.ts";
import { settle } from "./_start_time.ts";
import { expectEmpty, expectMountpoint, runPhase, type Unit } from "./_workloads.ts";

const HELD_IDS = 10_000;

/** Mount + Unmount of a fresh ID on `volume`. */
function pairOn(volume: string, prefix: string): Unit {
  return async (call, client, iteration) => {
    const ID = `${prefix}-c${client}-m${iteration}`;
    await call("/VolumeDriver.Mount", { Name: volume, ID }, expectMountpoint);
    await call("/VolumeDriver.Unmount", { Name: volume, ID }, expectEmpty);
  };
}

export async function runScalePhases(ctx: Context) {
  const stateDir = join(ctx.dir, "state-scale");
  const socket = join(ctx.dir, "scale.sock");
  const berth = spawnBerth(ctx.tracker, { socket, stateDir });
  await berth.ready();
  await settle(berth);
  const clients = await connectAll(ctx, socket, MAX_CLIENTS);
  for (const Name of ["small", "big"]) {
    expectEmpty(await clients[0]!.call("/VolumeDriver.Create", { Name, Opts: null }));
    expectMountpoint(await clients[0]!.call("/VolumeDriver.Mount", { Name, ID: "holder" }));
  }
  progress(`mounting ${HELD_IDS} IDs on one volume`);
  failOnErrors(
    await runPhase("fill", clients, MAX_CLIENTS, {
      unitsPerClient: Math.ceil(HELD_IDS / MAX_CLIENTS),
    }, async (call, client, i) => {
      await call("/VolumeDriver.Mount", { Name: "big", ID: `h${client}-${i}` }, expectMountpoint);
    }),
  );
  const target = { berth, stateDir, clients };
  for (const count of [1, MAX_CLIENTS]) {
    for (const [volume, label] of [["small", "1"], ["big", "10,000"]] as const) {
      await berthPhase(target, ctx.results.rows, {
        workload: `mount/unmount of one volume held by ${label} ID${label === "1" ? "" : "s"}`,
        count,
        length: { seconds: SECONDS },
        unit: pairOn(volume, `${volume}${count}`),
      });
    }
  }
  await stopBerth(berth, clients);
}
