/// <reference lib="dom" />
// The inspector page in real headless Chromium against a real Berth: the drawing, live updates
// without a reload, time travel with the slider, and a screenshot that is not blank.
import assert from "node:assert/strict";
import { join } from "node:path";
import { hasChromium, launchBrowser } from "../helpers/browser.ts";
import { startInProcess } from "../helpers/plugin_socket.ts";
import { pngColours } from "../helpers/png.ts";
import { skipUnless } from "../helpers/skip.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const NAME = "inspector page shows machines, follows calls live and travels back in time";

Deno.test({
  name: NAME,
  ignore: skipUnless(NAME, hasChromium() ? null : "needs Debian's chromium"),
  // playwright-core keeps pipes to Chromium that outlive a single op.
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using dir = await tempDir();
    await using berth = await startInProcess(dir.path, {
      admin: { transport: "tcp", hostname: "127.0.0.1", port: 0 },
    });
    const address = berth.berth.admin!.address;
    assert.equal(address.transport, "tcp");
    const base = `http://127.0.0.1:${address.transport === "tcp" ? address.port : 0}`;
    await using browser = await launchBrowser();
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const failures: string[] = [];
    page.on("pageerror", (error) => failures.push(error.message));
    page.on("requestfailed", (request) => failures.push(`${request.url()} failed`));
    await page.goto(`${base}/`);
    await page.waitForSelector("body[data-ready=true]", { timeout: 15_000 });

    await t.step("every machine is drawn, the volume machine with its states", async () => {
      for (const kind of ["volume", "network", "endpoint", "pool"]) {
        assert.ok(await page.isVisible(`svg.machine[data-kind=${kind}]`), kind);
      }
      const states = await page.$$eval(
        "svg.machine[data-kind=volume] g.state",
        (nodes) => nodes.map((node) => (node as SVGGElement).dataset.state),
      );
      assert.ok(states.includes("mounted") && states.includes("unmounted"), String(states));
    });

    let createdAt = 0;
    await t.step("a volume created and mounted over the plugin socket appears live", async () => {
      await page.evaluate(() => (globalThis as unknown as { marker: number }).marker = 42);
      assert.equal((await berth.call("VolumeDriver.Create", { Name: "web" })).status, 200);
      createdAt = berth.berth.store.lastSeq;
      await page.waitForSelector('#actors tr[data-id="volume/web"]', { timeout: 5_000 });
      assert.equal((await berth.call("VolumeDriver.Mount", { Name: "web", ID: "c1" })).status, 200);
      await page.waitForFunction(() =>
        document.querySelector('#actors tr[data-id="volume/web"] td:nth-child(2)')
          ?.textContent === "mounted"
      );
      const count = await page.textContent(
        'svg.machine[data-kind=volume] [data-count-for="mounted"]',
      );
      assert.equal(count, "1");
      const marker = await page.evaluate(() =>
        (globalThis as unknown as { marker: number }).marker
      );
      assert.equal(marker, 42, "the page was not reloaded");
    });

    await t.step("the actor's view lights its state and says who holds it", async () => {
      await page.click('#actors tr[data-id="volume/web"]');
      await page.waitForSelector('#actor-chart g.state.current[data-state="mounted"]');
      await page.waitForFunction(() => document.querySelector("#why")?.textContent?.includes("c1"));
      const rows = await page.$$eval("#history tbody tr", (trs) => trs.length);
      assert.equal(rows, 4);
    });

    await t.step("moving the slider back shows the earlier state", async () => {
      await page.$eval("#slider", (input, seq) => {
        (input as HTMLInputElement).value = String(seq);
        input.dispatchEvent(new Event("input"));
      }, createdAt);
      await page.waitForFunction(() =>
        document.querySelector('#actors tr[data-id="volume/web"] td:nth-child(2)')
          ?.textContent === "unmounted"
      );
      await page.waitForSelector('#actor-chart g.state.current[data-state="unmounted"]');
      await page.waitForSelector("svg.machine[data-kind=volume] g.edge.taken");
      const taken = await page.$eval(
        "svg.machine[data-kind=volume] g.edge.taken",
        (edge) => (edge as SVGGElement).dataset.target,
      );
      assert.equal(taken, "unmounted");
      await page.click("#back");
      await page.waitForFunction(() =>
        document.querySelector('#actors tr[data-id="volume/web"] td:nth-child(2)')
          ?.textContent === "creating"
      );
      // Before its first event the selected actor has no history: said, not an error.
      await page.click("#back");
      await page.waitForFunction(() =>
        document.querySelector("#actor-context")?.textContent?.includes("has no event")
      );
      await page.waitForFunction(() =>
        document.querySelector('#actors tr[data-id="volume/web"]') === null
      );
      await page.click("#live");
      await page.waitForFunction(() =>
        document.querySelector('#actors tr[data-id="volume/web"] td:nth-child(2)')
          ?.textContent === "mounted"
      );
    });

    await t.step("a screenshot of it is a picture, not a blank", async () => {
      // A few more actors, so the picture (the README's) shows counts in several states.
      for (
        const [method, body] of [
          ["VolumeDriver.Create", { Name: "db-data" }],
          ["VolumeDriver.Mount", { Name: "db-data", ID: "c2" }],
          ["VolumeDriver.Mount", { Name: "db-data", ID: "c3" }],
          ["VolumeDriver.Create", { Name: "cache" }],
          ["IpamDriver.RequestPool", { Pool: "198.18.7.0/24", Options: {}, V6: false }],
          ["IpamDriver.RequestAddress", { PoolID: "198.18.7.0/24", Address: "", Options: {} }],
        ] as const
      ) {
        assert.equal((await berth.call(method, body)).status, 200, method);
      }
      await page.waitForFunction(() =>
        document.querySelector('#actors tr[data-id="pool/198.18.7.0/24"]') !== null
      );
      const path = join(dir.path, "inspector.png");
      await page.screenshot({ path, fullPage: true });
      const png = pngColours(await Deno.readFile(path));
      assert.ok(png.width >= 1400 && png.height >= 900, `${png.width}×${png.height}`);
      assert.ok(png.colours > 50, `${png.colours} colours`);
      if (Deno.env.get("BERTH_SCREENSHOT")) {
        await Deno.copyFile(path, Deno.env.get("BERTH_SCREENSHOT")!);
      }
    });
    assert.deepEqual(failures, []);
  },
});
