// Start-time measurement: spawn Berth on a state dir, time until its socket accepts, stop it.
import { join } from "node:path";
import { connectPlugin } from "../tests/helpers/plugin_client.ts";
import { type ProcessTracker, type ServerProcess, spawnBerth } from "./_process.ts";
import type { StartRow } from "./_report.ts";
import { expectMountpoint } from "./_workloads.ts";

const START_TRIES = 3;

/** Log records in a state dir: one line each. */
export async function countLogEvents(stateDir: string): Promise<number> {
  let count = 0;
  const dir = join(stateDir, "log");
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".log")) continue;
    const bytes = await Deno.readFile(join(dir, entry.name));
    for (let i = bytes.indexOf(0x0a); i !== -1; i = bytes.indexOf(0x0a, i + 1)) count++;
  }
  return count;
}

/** Spawn → socket accepting, START_TRIES times, on `stateDirOf(try)`. */
export async function measureStart(
  ctx: { dir: string; tracker: ProcessTracker },
  label: string,
  options: { stateDirOf: (attempt: number) => string; heldVolumes: number },
): Promise<StartRow> {
  const row: StartRow = { label, events: 0, readyMs: [], stopMs: [] };
  for (let attempt = 0; attempt < START_TRIES; attempt++) {
    const socket = join(ctx.dir, `start-${attempt}.sock`);
    const stateDir = options.stateDirOf(attempt);
    const berth = spawnBerth(ctx.tracker, { socket, stateDir, label: `Berth (${label})` });
    row.readyMs.push(await berth.ready());
    if (options.heldVolumes > 0 && attempt === 0) {
      await checkHeldVolumes(socket, options.heldVolumes);
    }
    await settle(berth);
    const stopping = performance.now();
    const status = await berth.stop();
    row.stopMs.push(performance.now() - stopping);
    if (!status.success) throw new Error(`Berth exited with ${status.code}:\n${berth.stderr()}`);
    row.events = await countLogEvents(stateDir);
  }
  return row;
}

/**
 * Waits until Berth can take SIGTERM cleanly. main.ts installs its SIGINT/SIGTERM listeners only
 * after the socket accepts and the "serving" line is out, so a SIGTERM sent at once kills it with
 * status 143 and leaves the socket file behind (seen in most tries); 50 ms after the line is enough.
 */
export async function settle(berth: ServerProcess) {
  await berth.waitForStderr(/\[INFO\] berth: serving /);
  await new Promise((resolve) => setTimeout(resolve, 50));
}

/** After a restart every held volume must be back, mounted once by its holder. */
async function checkHeldVolumes(socket: string, count: number) {
  using client = await connectPlugin(socket);
  const reply = await client.call("/VolumeDriver.List", {});
  const volumes = (reply.body as { Volumes?: { Name: string; Status?: { mounts?: number } }[] })
    ?.Volumes ?? [];
  const held = volumes.filter((volume) => volume.Name.startsWith("held-"));
  if (
    reply.status !== 200 || held.length !== count || held.some((v) => v.Status?.mounts !== 1)
  ) {
    throw new Error(
      `After restart, List shows ${held.length} held volumes: ${reply.text.slice(0, 300)}`,
    );
  }
  expectMountpoint(
    await client.call("/VolumeDriver.Mount", { Name: "held-c0", ID: "after-restart" }),
  );
}
