// The crash soak: workers drive a real Berth child with volume and IPAM calls and note every
// acknowledged reply; Berth is SIGKILLed at random moments and started again on the same state
// dir, which must then hold every acknowledged change (calls in flight at the kill: either
// outcome), with a volume directory on the host for each live volume and none for the others.
// Used by tests/soak/soak_test.ts (CI) and tests/soak/main.ts (`deno task soak`).
import { join } from "node:path";
import { adminClient } from "../helpers/admin_client.ts";
import { type BerthProcess, runBerth, spawnBerth } from "../helpers/berth_process.ts";
import {
  acknowledged,
  applyReply,
  emptyModel,
  expectedStatus,
  type Model,
} from "../helpers/berth_model.ts";
import { compareHost, compareModel, readState } from "../helpers/berth_state.ts";
import { pluginClient } from "../helpers/plugin_socket.ts";
import { createRandom, type Random } from "../helpers/random.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { chooseOp, type Op, settleInFlight } from "./_ops.ts";

export type SoakOptions = {
  kills: number;
  workers: number;
  seed: number;
  /** Hears a line of progress now and then. */
  progress?: (line: string) => void;
};

export type SoakResult = {
  kills: number;
  acknowledged: number;
  /** Calls whose answer a kill cut off. */
  inFlight: number;
  restartMs: number[];
  seconds: number;
  /** Acknowledged changes lost or state made up, first ones first; empty when the soak held. */
  problems: string[];
  /** `berth verify` failures (every tenth restart and at the end); they do not stop the soak. */
  verifyFailures: string[];
  verifyRuns: number;
  summary: string;
};

type Round = { model: Model; acked: number; problems: string[]; stop: boolean };

/** One worker until its connection dies with Berth: returns the call then in flight, if any. */
async function work(
  socket: string,
  w: number,
  r: Random,
  round: Round,
  volumesDir: string,
): Promise<Op | null> {
  using client = pluginClient(socket);
  while (!round.stop) {
    const op = chooseOp(w, r, round.model);
    let reply;
    try {
      reply = await client.call(op.method, op.body);
    } catch {
      return op;
    }
    const expected = expectedStatus(round.model, op.method, op.body) ?? reply.status;
    if (reply.status !== expected || (reply.status !== 200 && reply.status !== 500)) {
      const call = `${op.method} ${JSON.stringify(op.body)}`;
      round.problems.push(`${call} → ${reply.status} ${reply.text}; the model says ${expected}`);
    }
    if (acknowledged(reply)) round.acked++;
    const call = { method: op.method, body: op.body, reply };
    round.problems.push(...applyReply(round.model, call, volumesDir));
  }
  return null;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}

/** Runs the soak in a fresh temp dir, removed at the end whatever happens. */
export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const { workers, seed } = options;
  const say = options.progress ?? (() => {});
  await using dir = await tempDir("berth-soak-");
  const socket = join(dir.path, "berth.sock");
  const stateDir = join(dir.path, "state");
  const volumesDir = join(stateDir, "volumes");
  const adminSocket = join(dir.path, "admin.sock");
  const args = [
    ...["--socket", socket, "--state-dir", stateDir, "--admin", adminSocket],
    ...["--snapshot-every", "40", "--keep-snapshots", "2"],
  ];
  const random = createRandom(seed);
  const workerRandom = Array.from(
    { length: workers },
    (_, w) => createRandom(seed ^ (w + 1) * 0x9e3779b1),
  );
  const round: Round = { model: emptyModel(), acked: 0, problems: [], stop: false };
  const verifyFailures: string[] = [];
  let verifyRuns = 0;
  async function verify(when: string) {
    verifyRuns++;
    const verified = await runBerth(["verify", "--state-dir", stateDir]);
    if (verified.code !== 0) verifyFailures.push(`berth verify ${when}: ${verified.stderr.trim()}`);
  }
  const restartMs: number[] = [];
  let inFlight = 0;
  let kills = 0;
  const started = performance.now();
  let berth: BerthProcess | null = spawnBerth(args);
  try {
    await berth.ready();
    while (kills < options.kills && round.problems.length === 0) {
      round.stop = false;
      const running = workerRandom.map((r, w) => work(socket, w, r, round, volumesDir));
      await new Promise((resolve) => setTimeout(resolve, 20 + random.int(400)));
      berth.kill("SIGKILL");
      const status = await berth.exited();
      if (status.signal !== "SIGKILL") {
        round.problems.push(`Berth ended ${JSON.stringify(status)} before the kill`);
      }
      const cut = (await Promise.all(running)).filter((op): op is Op => op !== null);
      inFlight += cut.length;
      kills++;
      if (/\[ERROR\]/.test(berth.stderr())) {
        round.problems.push(`[ERROR] before kill ${kills}:\n${berth.stderr()}`);
      }
      const spawnedAt = performance.now();
      berth = spawnBerth(args);
      await berth.ready(socket, 60_000);
      restartMs.push(performance.now() - spawnedAt);
      await check(berth, cut, kills);
      if (kills % 50 === 0) {
        say(
          `soak: ${kills} kills, ${round.acked} acknowledged, ${
            ((performance.now() - started) / 1000).toFixed(0)
          } s`,
        );
      }
    }
    // A clean stop at the end, and the log and snapshots as verify sees them.
    round.stop = true;
    berth.kill("SIGTERM");
    const stopped = await berth.exited();
    if (stopped.code !== 0) {
      round.problems.push(`SIGTERM at the end: ${JSON.stringify(stopped)}\n${berth.stderr()}`);
    }
    berth = null;
    await verify("after the last stop");
  } finally {
    round.stop = true;
    await berth?.[Symbol.asyncDispose]();
  }

  /** After restart number `kill`: the state is the model, give or take the calls that were cut. */
  async function check(berth: BerthProcess, cut: Op[], kill: number) {
    using client = pluginClient(socket);
    using admin = adminClient({ transport: "unix", path: adminSocket });
    const [state, seen] = await readState(client.call, admin.get);
    const [settled, unsettled] = settleInFlight(round.model, state, cut, volumesDir);
    const lost = compareModel(settled, state);
    const host = compareHost(settled, volumesDir);
    const problems = [...seen, ...unsettled, ...lost, ...host];
    if (problems.length > 0) {
      round.problems.push(`after restart ${kill} (${cut.length} calls in flight):`, ...problems);
      round.problems.push(`Berth's stderr:\n${berth.stderr().slice(-3000)}`);
    }
    round.model = settled;
    // Every tenth restart, while Berth idles: the log and its snapshots agree with each other.
    if (kill % 10 === 0) await verify(`after restart ${kill}`);
  }

  const seconds = (performance.now() - started) / 1000;
  const sorted = [...restartMs].sort((a, b) => a - b);
  const summary = `soak: ${kills} SIGKILLs in ${seconds.toFixed(0)} s, ${workers} workers, ` +
    `${round.acked} acknowledged calls (${inFlight} cut off in flight), restart to socket ` +
    `p50 ${percentile(sorted, 0.5).toFixed(0)} ms, max ${(sorted.at(-1) ?? 0).toFixed(0)} ms, ` +
    `berth verify failed ${verifyFailures.length} of ${verifyRuns} times, ` +
    `seed ${seed}${round.problems.length > 0 ? ", FAILED" : ""}`;
  return {
    kills,
    acknowledged: round.acked,
    inFlight,
    restartMs,
    seconds,
    problems: round.problems,
    verifyFailures,
    verifyRuns,
    summary,
  };
}
