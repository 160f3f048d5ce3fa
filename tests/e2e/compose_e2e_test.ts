// docker-compose end to end: Debian's docker-compose 1.29 runs tests/e2e/fixtures/compose.yml
// (a Berth volume with options, an external Berth volume, a Berth network with Berth IPAM) on a
// private dockerd (tests/e2e/_dockerd.ts), and `down -v` must leave nothing of Berth's behind.

import assert from "node:assert/strict";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { type Dockerd, requireOrSkip, startDockerd } from "./_dockerd.ts";
import { adminClient } from "../helpers/admin_client.ts";
import { type BerthProcess, spawnBerth } from "../helpers/berth_process.ts";
import { onPath, skipUnless } from "../helpers/skip.ts";
import { exists } from "../helpers/exists.ts";

const COMPOSE_FILE = fileURLToPath(new URL("./fixtures/compose.yml", import.meta.url));
const PLUGIN_DIR = "/run/docker/plugins";
const PROJECT = "berthcmp";
// compose 1.29 names what it makes <project>_<name>.
const NETWORK = `${PROJECT}_berthnet`;
const DATA_VOLUME = `${PROJECT}_data`;
// dockerd only logs (and then ignores) a failed Leave, DeleteEndpoint or ReleaseAddress.
const DRIVER_TROUBLE_REGEXP = /endpoint|sandbox|ip address|ipam|pool|driver|rolled back|plugin/i;
const PING_OK_REGEXP = /3 packets transmitted, 3 packets received/g;

function log(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`${line}\n`));
}

type Run = { code: number; stdout: string; stderr: string };
type HostLink = { ifname: string; ifalias?: string };
type ActorView = { kind: string; name: string; state: string };

/** What one run of the story uses: its own plugin name, dockerd, state dir and subnet. */
type Story = {
  d: Dockerd;
  plugin: string;
  stateDir: string;
  admin: string;
  subnet: string;
  writerIp: string;
  external: string;
  /** Whether compose may have left something up: the finally runs `down -v` then. */
  composed: boolean;
  restartBerth: () => Promise<void>;
};

async function hostLinks(): Promise<HostLink[]> {
  const out = await new Deno.Command("ip", { args: ["-json", "link", "show"], stdin: "null" })
    .output();
  if (!out.success) throw new Error(`ip -json link show: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(new TextDecoder().decode(out.stdout)) as HostLink[];
}

/** Links on the host that this run's Berth made: it tags each with `berth:<state dir>`. */
async function berthLinks(stateDir: string): Promise<string[]> {
  return (await hostLinks()).filter((link) => link.ifalias === `berth:${stateDir}`)
    .map((link) => link.ifname).sort();
}

// The environment is built from nothing: DOCKER_HOST only in the child, and no COMPOSE_* or
// ~/.docker of the user's can change what compose does.
async function compose(s: Story, args: string[], check = true): Promise<Run> {
  const env = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: s.d.dir,
    DOCKER_HOST: `unix://${s.d.socket}`,
    DOCKER_CONFIG: join(s.d.dir, "cli"),
    BERTH_PLUGIN: s.plugin,
    BERTH_IMAGE: s.d.image,
    BERTH_SUBNET: s.subnet,
    BERTH_WRITER_IP: s.writerIp,
    BERTH_EXTERNAL_VOLUME: s.external,
  };
  const out = await new Deno.Command("docker-compose", {
    args: ["--ansi", "never", "-p", PROJECT, "-f", COMPOSE_FILE, ...args],
    env,
    clearEnv: true,
    stdin: "null",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const [stdout, stderr] = [out.stdout, out.stderr].map((b) => new TextDecoder().decode(b));
  const run = { code: out.code, stdout: stdout ?? "", stderr: stderr ?? "" };
  if (check && run.code !== 0) {
    throw new Error(`docker-compose ${args.join(" ")} exited ${run.code}\n${run.stderr}`);
  }
  return run;
}

async function actors(admin: string): Promise<ActorView[]> {
  using client = adminClient({ transport: "unix", path: admin });
  let reply = await client.get("/api/actors");
  // A Berth just started answers 503 "starting" until its replay ends.
  for (let tries = 0; reply.status === 503 && tries < 100; tries++) {
    await delay(50);
    reply = await client.get("/api/actors");
  }
  assert.equal(reply.status, 200, `admin /api/actors: ${reply.text}`);
  return (reply.json() as { actors: ActorView[] }).actors;
}

async function lines(d: Dockerd, args: string[]): Promise<string[]> {
  return (await d.docker(args)).stdout.split("\n").filter(Boolean).sort();
}

/** The container compose made for `service`, as its id. */
async function containerOf(s: Story, service: string): Promise<string> {
  const id = (await compose(s, ["ps", "-q", service])).stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/, `no container for ${service}`);
  return id;
}

type Endpoint = { IPAddress: string; EndpointID: string };

async function endpointOf(s: Story, container: string): Promise<Endpoint> {
  const format = "{{json .NetworkSettings.Networks}}";
  const out = await s.d.docker(["inspect", "--format", format, container]);
  const endpoint = (JSON.parse(out.stdout) as Record<string, Endpoint>)[NETWORK];
  assert.ok(endpoint, `${container} is not on ${NETWORK}: ${out.stdout}`);
  return endpoint;
}

function escaped(text: string): string {
  return text.replaceAll(".", "\\.");
}

async function upWritesReadsPings(s: Story): Promise<void> {
  s.composed = true;
  await compose(s, ["up", "-d"]);
  const reader = await containerOf(s, "reader");
  const code = (await s.d.docker(["wait", reader], { timeoutMs: 60_000 })).stdout.trim();
  const { stdout: logs, stderr } = await s.d.docker(["logs", reader]);
  assert.equal(code, "0", `the reader failed:\n${logs}${stderr}`);
  assert.match(logs, /^from-writer\nkept\ndata 1234:1234 750\n/, `what the reader read:\n${logs}`);
  const prefix = escaped(s.subnet.replace(/0\/24$/, ""));
  assert.match(logs, new RegExp(`inet ${prefix}\\d+/24 `), `the reader's address:\n${logs}`);
  // The name is Docker's embedded DNS at work on a remote-driver network; compose 1.29 adds no
  // /etc/hosts lines for other services.
  assert.match(logs, /^nameserver 127\.0\.0\.11$/m, "the embedded DNS is the resolver");
  assert.match(logs, new RegExp(`^PING writer \\(${escaped(s.writerIp)}\\)`, "m"));
  assert.equal(logs.match(PING_OK_REGEXP)?.length, 2, `two pings, by address and name:\n${logs}`);
}

/** Checks what up made on the host and in Docker; returns the links it found. */
async function upMadeBerthThings(s: Story): Promise<string[]> {
  const volumes = await lines(s.d, ["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]);
  assert.deepEqual(volumes, [`${s.plugin} ${s.external}`, `${s.plugin} ${DATA_VOLUME}`]);
  const inspect = await s.d.docker(["network", "inspect", "--format", "{{json .}}", NETWORK]);
  const network = JSON.parse(inspect.stdout);
  assert.deepEqual([network.Driver, network.IPAM.Driver], [s.plugin, s.plugin]);
  assert.deepEqual(network.IPAM.Config.map((c: { Subnet: string }) => c.Subnet), [s.subnet]);
  const writer = await endpointOf(s, await containerOf(s, "writer"));
  assert.equal(writer.IPAddress, s.writerIp);
  // The reader has exited, and dockerd took its endpoint and veth away then: a bridge and the
  // writer's host veth are left.
  const links = await berthLinks(s.stateDir);
  const expected = [`bthb${network.Id.slice(0, 11)}`, `bthh${writer.EndpointID.slice(0, 11)}`];
  assert.deepEqual(links, expected.sort());
  const info = await Deno.stat(join(s.stateDir, "volumes", DATA_VOLUME, "_data"));
  assert.deepEqual([info.uid, info.gid, (info.mode ?? 0) & 0o7777], [1234, 1234, 0o750]);
  return links;
}

async function assertHoldsOnly(s: Story, expected: string[]): Promise<void> {
  const held = (await actors(s.admin)).map((a) => `${a.kind}/${a.name} ${a.state}`);
  assert.deepEqual(held, expected, "Berth's actors (pools, networks, endpoints, volumes)");
}

async function downLeavesNothing(s: Story, links: string[]): Promise<void> {
  await compose(s, ["down", "-v", "--timeout", "1"]);
  s.composed = false;
  const volumes = await lines(s.d, ["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]);
  assert.deepEqual(volumes, [`${s.plugin} ${s.external}`], "only the external volume is left");
  assert.deepEqual(await lines(s.d, ["ps", "-aq"]), [], "containers are left");
  const networks = await lines(s.d, ["network", "ls", "--format", "{{.Driver}}"]);
  assert.ok(!networks.includes(s.plugin), `a ${s.plugin} network is left`);
  assert.ok(!exists(join(s.stateDir, "volumes", DATA_VOLUME)), "the volume's directory is left");
  assert.deepEqual(await berthLinks(s.stateDir), [], `links left of ${links.join(", ")}`);
  await assertHoldsOnly(s, [`volume/${s.external} unmounted`]);
}

async function restartedBerthAgrees(s: Story): Promise<void> {
  await s.restartBerth();
  await assertHoldsOnly(s, [`volume/${s.external} unmounted`]);
  // The pool went back: Berth refuses a pool that overlaps one it holds.
  const create = ["network", "create", "-d", s.plugin, "--ipam-driver", s.plugin];
  await s.d.docker([...create, "--subnet", s.subnet, "probe"]);
  await s.d.docker(["network", "rm", "probe"]);
}

async function externalSurvives(s: Story): Promise<void> {
  const dir = join(s.stateDir, "volumes", s.external);
  assert.equal(await Deno.readTextFile(join(dir, "_data", "greeting")), "kept\n");
  await s.d.docker(["volume", "rm", s.external]);
  assert.ok(!exists(dir), "the external volume's directory is left");
  await assertHoldsOnly(s, []);
}

function subnet(): string {
  // 128 and up keeps clear of the fixed subnets the bench uses (198.18.40.0/22, .50, .51).
  const [x] = crypto.getRandomValues(new Uint8Array(1)).map((n) => 128 + (n % 127));
  return `198.19.${x}.0/24`;
}

// Warnings and errors from dockerd about the driver, but the ones every run of the harness has.
function driverTrouble(d: Dockerd): string[] {
  return d.logTail(20_000).split("\n").filter((line) =>
    /level=(warning|error|fatal)/.test(line) && DRIVER_TROUBLE_REGEXP.test(line) &&
    !/containerd|snapshotter|cgroup blkio|IPv4 forwarding|shim disconnected|cleanup warnings/
      .test(line)
  );
}

function composeMissing(): string | null {
  return onPath("docker-compose") ? null : "docker-compose not on PATH (Debian: docker-compose)";
}

async function removeLeftovers(stateDir: string): Promise<void> {
  for (const name of await berthLinks(stateDir)) {
    log(`removing leftover link ${name}`);
    await new Deno.Command("ip", { args: ["link", "del", "dev", name], stdin: "null" }).output();
  }
  await Deno.remove(stateDir, { recursive: true });
}

const NAME = "docker-compose up and down -v with Berth volumes, network and IPAM leaves nothing";
Deno.test({
  name: NAME,
  ignore: requireOrSkip(NAME) || skipUnless(NAME, composeMissing()),
}, async (t) => {
  const plugin = `berth-e2e-cmp-${crypto.randomUUID().slice(0, 8)}`;
  const socket = join(PLUGIN_DIR, `${plugin}.sock`);
  const stateDir = await Deno.makeTempDir({ prefix: "berth-e2e-cmp-state-" });
  const adminDir = await Deno.makeTempDir({ prefix: "berth-e2e-cmp-admin-" });
  const admin = join(adminDir, "admin.sock");
  const berths: BerthProcess[] = [];
  let story: Story | undefined;
  async function startBerth(): Promise<void> {
    berths.push(spawnBerth(["serve", "--name", plugin, "--state-dir", stateDir, "--admin", admin]));
    await berths.at(-1)!.ready(socket);
  }
  async function restartBerth(): Promise<void> {
    berths.at(-1)!.kill("SIGTERM");
    assert.equal((await berths.at(-1)!.exited()).code, 0, "Berth's exit code after SIGTERM");
    await startBerth();
  }
  async function step(name: string, fn: (s: Story) => Promise<void>): Promise<void> {
    if (!await t.step(name, () => fn(story!))) throw new Error(`Step failed: ${name}`);
  }
  let dockerd: Dockerd | undefined;
  try {
    await Deno.mkdir(PLUGIN_DIR, { recursive: true });
    dockerd = await startDockerd({ log: (line) => log(`[dockerd] ${line}`) });
    await startBerth();
    const net = subnet();
    story = {
      ...{ d: dockerd, plugin, stateDir, admin, subnet: net, external: "berth-ext" },
      ...{ writerIp: net.replace(/0\/24$/, "10"), composed: false, restartBerth },
    };
    let links: string[] = [];
    await step("an external volume is made with docker volume create", async (s) => {
      await s.d.docker(["volume", "create", "-d", plugin, s.external]);
    });
    await step("up -d: the reader reads both volumes and pings the writer", upWritesReadsPings);
    await step("up made Berth's volume, network and links", async (s) => {
      links = await upMadeBerthThings(s);
    });
    await step(
      "down -v leaves no volume, link, pool or address",
      (s) => downLeavesNothing(s, links),
    );
    await step("a restarted Berth holds only the external volume", restartedBerthAgrees);
    await step("the external volume survives down -v until removed", externalSurvives);
    assert.deepEqual(driverTrouble(dockerd), [], "dockerd logged trouble with the driver");
    const trouble = berths.flatMap((b) => b.stderr().split("\n")).filter((l) =>
      /\[(WARN|ERROR)\]/.test(l)
    );
    assert.deepEqual(trouble, [], "Berth warned or failed");
  } finally {
    if (story?.composed) {
      await compose(story, ["down", "-v", "--timeout", "1"], false).catch((e) => log(String(e)));
    }
    // dockerd before Berth: it removes leftover containers while Berth can still answer them.
    await dockerd?.stop();
    for (const berth of berths) {
      berth.kill("SIGKILL");
      await berth.exited();
      log(`[berth ${berth.child.pid} stderr]\n${berth.stderr().trimEnd()}`);
    }
    await Deno.remove(socket).catch(() => {});
    await Deno.remove(adminDir, { recursive: true });
    await removeLeftovers(stateDir);
  }
});
