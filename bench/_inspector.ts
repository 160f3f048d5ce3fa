// The inspector phases: held Mount/Unmount at 64 clients on a Berth without an admin endpoint and
// on one whose inspector page is open in Chromium and streaming (alternated, same run); time to
// first paint of the page with 10,000 actors; `berth state --at` on a 1,000,000-event log.
import { join } from "node:path";
import { writeBigLog } from "../tests/helpers/big_log.ts";
import { hasChromium, launchBrowser } from "../tests/helpers/browser.ts";
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
import { expectEmpty, mountPairUnit, prepareHeld, runPhase } from "./_workloads.ts";

const PAIR = "mount/unmount (held)";
const ROUNDS = 3;
const PAINT_ACTORS = 10_000;
const TRAVEL_EVENTS = 1_000_000;
const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** A row of the inspector table: what, the figure, how it was taken. */
export type InspectorRow = [string, string, string];

type Mode = "off" | "feed" | "on";
const MODE_LABEL: Record<Mode, string> = {
  off: "inspector off (--admin off)",
  feed: "live feed streaming to a client, no browser",
  on: "inspector page open in Chromium and streaming",
};

/** Held pairs at 64 clients: no admin endpoint, a bare SSE client, the page open; ROUNDS times. */
async function benchOverhead(ctx: Context): Promise<InspectorRow[]> {
  const rates: Record<Mode, number[]> = { off: [], feed: [], on: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const modes: Mode[] = round % 2 === 0 ? ["off", "feed", "on"] : ["on", "feed", "off"];
    for (const mode of modes) {
      const stateDir = join(ctx.dir, `state-inspect-${round}-${mode}`);
      const socket = join(ctx.dir, `inspect-${round}-${mode}.sock`);
      const admin = mode === "off" ? "off" : "127.0.0.1:0";
      const berth = spawnBerth(ctx.tracker, { socket, stateDir, admin, label: `Berth ${mode}` });
      await berth.ready();
      await settle(berth);
      const clients = await connectAll(ctx, socket, MAX_CLIENTS);
      await prepareHeld(clients[0]!, MAX_CLIENTS);
      failOnErrors(await runPhase("warm-up", clients, 16, { seconds: 1 }, mountPairUnit("warm")));
      const target = { berth, stateDir, clients };
      const rows = ctx.results.rows;
      const open = mode === "on"
        ? await openInspector(berth.stderr())
        : mode === "feed"
        ? await openFeed(berth.stderr())
        : null;
      try {
        const workload = `${PAIR}, ${MODE_LABEL[mode]}`;
        await berthPhase(target, rows, {
          workload,
          count: MAX_CLIENTS,
          length: { seconds: SECONDS },
          unit: mountPairUnit(`i${round}${mode}`),
        });
        const phase = rows.at(-1)!.phase;
        rates[mode].push(phase.calls / phase.seconds);
        if (open) await open.check();
      } finally {
        await open?.close();
      }
      await stopBerth(berth, clients);
    }
  }
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  return (["feed", "on"] as const).map((mode) => [
    `Mount/Unmount, 64 clients: ${MODE_LABEL[mode]} ÷ ${MODE_LABEL.off}`,
    `${(mean(rates[mode]) / mean(rates.off)).toFixed(3)} (${mean(rates[mode]).toFixed(0)} vs ` +
    `${mean(rates.off).toFixed(0)} calls/s)`,
    `${ROUNDS} rounds of ${SECONDS} s each, alternated; the client or browser runs on the same ` +
    "2 CPUs as Berth and the bench clients",
  ]);
}

export function adminPortOf(stderr: string): string {
  const port = /admin on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr)?.[1];
  if (!port) throw new Error(`no admin line in:\n${stderr}`);
  return port;
}

/**
 * A bare SSE client on the live feed: curl in its own process (a reader inside the bench process
 * would take CPU from the bench's own clients and skew the figure), counting what it read.
 */
async function openFeed(stderr: string) {
  const child = new Deno.Command("curl", {
    args: ["-sN", `http://127.0.0.1:${adminPortOf(stderr)}/api/events`],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let bytes = 0;
  const reading = (async () => {
    for await (const chunk of child.stdout) bytes += chunk.length;
  })();
  await new Promise((resolve) => setTimeout(resolve, 200));
  return {
    check() {
      if (bytes < 10_000) throw new Error(`the feed carried only ${bytes} bytes`);
      return Promise.resolve();
    },
    async close() {
      child.kill("SIGTERM");
      await Promise.all([reading, child.status]);
    },
  };
}

/** Opens the inspector page of the Berth whose stderr names its admin port. */
async function openInspector(stderr: string) {
  const port = adminPortOf(stderr);
  const browser = await launchBrowser();
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 30_000 });
  return {
    async check() {
      // The page followed the run: its sequence number moved with the log.
      const seq = await page.textContent("#seq");
      if (!seq || !/#\d{4,}/.test(seq)) throw new Error(`the page did not follow: ${seq}`);
    },
    close: () => browser.close(),
  };
}

/** Time from navigation to a painted, filled page with PAINT_ACTORS volumes. */
async function benchFirstPaint(ctx: Context): Promise<InspectorRow> {
  const stateDir = join(ctx.dir, "state-paint");
  const socket = join(ctx.dir, "paint.sock");
  const berth = spawnBerth(ctx.tracker, { socket, stateDir, admin: "127.0.0.1:0" });
  await berth.ready();
  const clients = await connectAll(ctx, socket, MAX_CLIENTS);
  failOnErrors(
    await runPhase("create 10k", clients, MAX_CLIENTS, {
      unitsPerClient: Math.ceil(PAINT_ACTORS / MAX_CLIENTS),
    }, async (call, client, i) => {
      await call("/VolumeDriver.Create", { Name: `paint-${client}-${i}`, Opts: null }, expectEmpty);
    }),
  );
  const port = adminPortOf(berth.stderr());
  const times: number[] = [];
  const paints: number[] = [];
  await using browser = await launchBrowser();
  for (let i = 0; i < 3; i++) {
    const page = await browser.newPage();
    const start = performance.now();
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector("body[data-ready=true]", { timeout: 60_000 });
    await page.waitForSelector("#actors tbody tr");
    times.push(performance.now() - start);
    paints.push(
      await page.evaluate(() =>
        performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? NaN
      ),
    );
    await page.close();
  }
  await stopBerth(berth, clients);
  const ms = (values: number[]) => values.map((v) => v.toFixed(0)).join(", ");
  return [
    `Inspector with ${PAINT_ACTORS} volumes: navigation → charts, counts and table drawn`,
    `${ms(times)} ms (first contentful paint ${ms(paints)} ms)`,
    "headless Chromium on the same machine, 3 loads, fresh tab each",
  ];
}

/** `berth state --at` on a log of TRAVEL_EVENTS events over 1,000 volumes: seconds, peak RSS. */
async function benchTimeTravel(ctx: Context): Promise<InspectorRow[]> {
  const stateDir = join(ctx.dir, "state-travel");
  const last = await writeBigLog(stateDir, TRAVEL_EVENTS, 1000);
  const rows: InspectorRow[] = [];
  for (const at of [Math.floor(last / 2), last]) {
    const args = ["run", "--allow-all", MAIN, "state", "--at", String(at), "--state-dir", stateDir];
    const output = await new Deno.Command("/usr/bin/time", {
      args: ["-f", "%e %M", Deno.execPath(), ...args],
      stdout: "null",
      stderr: "piped",
    }).output();
    const [seconds, kb] = new TextDecoder().decode(output.stderr).trim().split("\n").at(-1)!
      .split(" ");
    if (!output.success) {
      throw new Error(`state --at failed: ${new TextDecoder().decode(output.stderr)}`);
    }
    rows.push([
      `\`berth state --at ${at}\` on a ${last}-event log`,
      `${seconds} s, peak RSS ${(Number(kb) / 1024).toFixed(0)} MiB`,
      "GNU time, wall clock and max RSS of the whole process (Deno start included)",
    ]);
  }
  return rows;
}

/**
 * Every inspector phase (BERTH_BENCH_INSPECTOR picks some: overhead, paint, travel); those that
 * need a browser are skipped with a note when Chromium is not installed.
 */
export async function runInspectorPhases(ctx: Context) {
  const only = Deno.env.get("BERTH_BENCH_INSPECTOR")?.split(",");
  const wanted = (name: string) => !only || only.includes(name);
  const rows: InspectorRow[] = [];
  if (!hasChromium()) {
    ctx.results.notes.push("Inspector overhead and paint skipped: no /usr/bin/chromium.");
  } else {
    if (wanted("overhead")) rows.push(...await benchOverhead(ctx));
    if (wanted("paint")) rows.push(await benchFirstPaint(ctx));
  }
  if (wanted("travel")) rows.push(...await benchTimeTravel(ctx));
  for (const row of rows) progress(`${row[0]}: ${row[1]}`);
  ctx.results.inspector.push(...rows);
}
