// The `docker run --network` phase: a private dockerd (tests/e2e/_dockerd.ts) with Berth as a
// legacy network + IPAM plugin, timing container starts on a Berth network against Docker's own
// bridge driver (and --network none) in the same run. Needs root, dockerd and a static busybox.
import { join } from "node:path";
import { type Dockerd, dockerdAvailable, startDockerd } from "../tests/e2e/_dockerd.ts";
import { type Context, progress } from "./_context.ts";
import { berthRunBreakdown, removeLeftoverLinks } from "./_docker_host.ts";
import { type ServerProcess, spawnBerth } from "./_process.ts";
import type { DockerRunRow } from "./_report.ts";
import { settle } from "./_start_time.ts";

const RUNS = Number(Deno.env.get("BERTH_BENCH_DOCKER_RUNS") ?? "20");
const PLUGIN_DIR = "/run/docker/plugins";
// RFC 2544 benchmarking space only: nothing here may clash with a real network.
const BERTH_SUBNET = "198.18.50.0/24";
const BRIDGE_SUBNET = "198.18.51.0/24";

type Network = { name: string; driver: string; subnetPrefix: string | null };

/** Creates the Berth network `bn` and the bridge network `dn`; returns what to time, and dn's id. */
async function createNetworks(dockerd: Dockerd, plugin: string) {
  await dockerd.docker([
    ...["network", "create", "-d", plugin, "--ipam-driver", plugin],
    ...["--subnet", BERTH_SUBNET, "bn"],
  ]);
  const created = await dockerd.docker(
    ["network", "create", "-d", "bridge", "--subnet", BRIDGE_SUBNET, "dn"],
  );
  const networks: Network[] = [
    { name: "bn", driver: `Berth (${plugin})`, subnetPrefix: "198.18.50." },
    { name: "dn", driver: "Docker bridge", subnetPrefix: "198.18.51." },
    { name: "none", driver: "none (no network)", subnetPrefix: null },
  ];
  return { networks, bridgeId: created.stdout.trim() };
}

function runArgs(dockerd: Dockerd, network: string, ...command: string[]): string[] {
  return ["run", "--rm", "--network", network, dockerd.image, ...command];
}

/** One untimed run per network that also checks the container got an address of its subnet. */
async function checkAddresses(dockerd: Dockerd, networks: Network[]) {
  for (const network of networks) {
    const { stdout } = await dockerd.docker(
      runArgs(dockerd, network.name, "ip", "-o", "-4", "addr"),
    );
    const addresses = [...stdout.matchAll(/inet (\S+)/g)].map((match) => match[1]!);
    const outside = addresses.filter((a) => a !== "127.0.0.1/8");
    const expected = network.subnetPrefix;
    const ok = expected === null
      ? outside.length === 0
      : outside.length === 1 && outside[0]!.startsWith(expected);
    if (!ok) {
      throw new Error(`Container on ${network.name} has addresses ${addresses.join(", ")}`);
    }
    progress(`docker run on ${network.name}: ${addresses.join(", ")}`);
  }
}

/** RUNS timed `docker run --rm --network X IMAGE true` per network, interleaved round by round. */
async function timeRuns(dockerd: Dockerd, networks: Network[]): Promise<DockerRunRow[]> {
  const rows: DockerRunRow[] = networks.map((network) => ({
    network: network.name,
    driver: network.driver,
    ms: [],
  }));
  for (let round = 0; round < RUNS; round++) {
    // Rotate the order so no network always goes first after the previous round's teardown.
    for (let k = 0; k < networks.length; k++) {
      const index = (round + k) % networks.length;
      const started = performance.now();
      await dockerd.docker(runArgs(dockerd, networks[index]!.name, "true"));
      rows[index]!.ms.push(performance.now() - started);
    }
  }
  return rows;
}

async function answers(socket: string): Promise<boolean> {
  try {
    (await Deno.connect({ transport: "unix", path: socket })).close();
    return true;
  } catch {
    return false;
  }
}

type CleanupState = {
  berth: ServerProcess;
  socket: string;
  stateDir: string;
  dockerd: Dockerd | null;
  bridgeId: string;
};

/** Everything the phase started, undone in reverse; callers share one run, even after a failure. */
function cleanupOf(state: CleanupState) {
  let cleaning = Promise.resolve();
  return () => cleaning = cleaning.then(() => undo(state));
}

async function undo(state: CleanupState) {
  const { dockerd, berth } = state;
  if (dockerd) {
    state.dockerd = null;
    const ps = await dockerd.docker(["ps", "-aq"], { check: false, timeoutMs: 10_000 });
    const ids = ps.stdout.split("\n").filter(Boolean);
    if (ids.length > 0) await dockerd.docker(["rm", "-f", ...ids], { check: false });
    await dockerd.docker(["network", "rm", "dn"], { check: false, timeoutMs: 20_000 });
    // While Berth still answers, so that it deletes its bridge itself; a dead Berth would hold
    // dockerd in its plugin retries for seconds, and its links are removed below anyway.
    if (await answers(state.socket)) {
      await dockerd.docker(["network", "rm", "bn"], { check: false, timeoutMs: 20_000 });
    }
    await dockerd.stop();
  }
  await berth.stop();
  await Deno.remove(state.socket).catch(() => {});
  for (const link of await removeLeftoverLinks(state.stateDir, state.bridgeId)) {
    progress(`removed leftover link ${link}`);
  }
}

function lastLines(text: string, count: number): string {
  return text.trimEnd().split("\n").slice(-count).join("\n");
}

/** Berth's first warnings and errors once serving (at start it names other people's bth* links). */
function problemsOf(berth: ServerProcess): string[] {
  const said = berth.stderr();
  return said.slice(said.indexOf("[INFO] berth: serving")).split("\n")
    .filter((line) => /\[(WARN|ERROR)\]/.test(line)).slice(0, 5);
}

/** The docker run phase; skipped with a note when this machine cannot run a private dockerd. */
export async function runDockerRunPhase(ctx: Context) {
  const { ok, why } = dockerdAvailable();
  if (!ok) {
    ctx.results.notes.push(`docker run phase skipped: ${why}.`);
    return;
  }
  const name = `berthbench${Deno.pid}`;
  const socket = join(PLUGIN_DIR, `${name}.sock`);
  const stateDir = join(ctx.dir, "state-docker");
  const berth = spawnBerth(ctx.tracker, { name, socket, stateDir, label: "Berth (plugin)" });
  const state = { berth, socket, stateDir, dockerd: null as Dockerd | null, bridgeId: "" };
  const cleanup = cleanupOf(state);
  ctx.cleanups.push(cleanup);
  try {
    progress(`Berth plugin ${name} ready after ${(await berth.ready()).toFixed(0)} ms`);
    await settle(berth);
    state.dockerd = await startDockerd({ log: (line) => progress(line) });
    if (ctx.aborted) throw new Error("Interrupted while dockerd started");
    const { networks, bridgeId } = await createNetworks(state.dockerd, name);
    state.bridgeId = bridgeId;
    await checkAddresses(state.dockerd, networks);
    const recordsBefore = await berthRunBreakdown(stateDir, 0);
    progress(`timing ${RUNS} runs on each of ${networks.map((n) => n.name).join(", ")}`);
    ctx.results.dockerRuns.push(...await timeRuns(state.dockerd, networks));
    const breakdown = await berthRunBreakdown(stateDir, recordsBefore.lastSeq);
    ctx.results.notes.push(breakdown.summary(RUNS));
    const problems = problemsOf(berth);
    if (problems.length > 0) ctx.results.notes.push(`Berth (plugin) said: ${problems.join(" / ")}`);
  } catch (error) {
    const tail = state.dockerd?.logTail(20) ?? "";
    const detail = `dockerd log tail:\n${tail}\nBerth:\n${lastLines(berth.stderr(), 20)}`;
    throw new Error(`${(error as Error).message}\n${detail}`, { cause: error });
  } finally {
    await cleanup();
    ctx.cleanups = ctx.cleanups.filter((other) => other !== cleanup);
  }
}
