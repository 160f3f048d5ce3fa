// Cost per event against entity size, on one Berth: Mount/Unmount of a fresh ID on a volume that
// 10,000 other mount IDs hold against one held by one ID, and RequestAddress (lowest free) +
// ReleaseAddress in a /16 holding 60,000 addresses against an empty /16, at 1 and 64 clients.
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
const HELD_ADDRESSES = 60_000;
const FULL_POOL = "198.18.0.0/16";
const EMPTY_POOL = "198.19.0.0/16";

/** RequestAddress (lowest free) then ReleaseAddress of what it got, in `pool`. */
function addressPairIn(pool: string): Unit {
  return async (call) => {
    let address = "";
    await call("/IpamDriver.RequestAddress", { PoolID: pool, Address: "" }, (reply) => {
      address = String((reply.body as { Address?: string } | null)?.Address ?? "");
      if (reply.status !== 200 || !address.includes("/")) {
        throw new Error(`expected an address, got ${reply.status} ${reply.text.slice(0, 200)}`);
      }
    });
    const bare = address.split("/")[0];
    await call("/IpamDriver.ReleaseAddress", { PoolID: pool, Address: bare }, expectEmpty);
  };
}

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
  for (const Pool of [FULL_POOL, EMPTY_POOL]) {
    const reply = await clients[0]!.call("/IpamDriver.RequestPool", { Pool });
    if (reply.status !== 200) throw new Error(`RequestPool ${Pool}: ${reply.text}`);
  }
  progress(`handing out ${HELD_ADDRESSES} addresses of ${FULL_POOL}`);
  failOnErrors(
    await runPhase("fill", clients, MAX_CLIENTS, {
      unitsPerClient: Math.ceil(HELD_ADDRESSES / MAX_CLIENTS),
    }, async (call) => {
      await call("/IpamDriver.RequestAddress", { PoolID: FULL_POOL, Address: "" }, (reply) => {
        if (reply.status !== 200) throw new Error(`fill: ${reply.text.slice(0, 200)}`);
      });
    }),
  );
  for (const count of [1, MAX_CLIENTS]) {
    for (
      const [pool, label] of [[EMPTY_POOL, "an empty /16"], [FULL_POOL, "a /16 holding 60,000"]]
    ) {
      await berthPhase(target, ctx.results.rows, {
        workload: `RequestAddress/ReleaseAddress in ${label}`,
        count,
        length: { seconds: SECONDS },
        unit: addressPairIn(pool!),
      });
    }
  }
  await stopBerth(berth, clients);
}
