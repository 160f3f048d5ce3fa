// Fuzz Berth's plugin socket: a real Berth child (inside a network namespace of the test's own,
// as root) takes BERTH_FUZZ_REQUESTS (default 20,000) seeded junk and valid requests on every
// route. Every answer must be JSON with a status Docker understands, the process must live, and
// its volumes and pools must equal a model fed only by acknowledged replies, after a restart too.
// Replay a failure with BERTH_FUZZ_SEED=<the printed seed>.
import assert from "node:assert/strict";
import { join } from "node:path";
import { PLUGIN_CONTENT_TYPE } from "../../src/protocol/docker_plugin.ts";
import { adminClient } from "../helpers/admin_client.ts";
import { runBerth, spawnBerth } from "../helpers/berth_process.ts";
import {
  acknowledged,
  applyReply,
  emptyModel,
  expectedStatus,
  type Model,
} from "../helpers/berth_model.ts";
import { compareHost, compareModel, readState, readStateOffline } from "../helpers/berth_state.ts";
import { netns } from "../helpers/netns.ts";
import { type Call, pluginClient, type Reply } from "../helpers/plugin_socket.ts";
import { createRandom, seedFromEnv } from "../helpers/random.ts";
import { inCi, onPath, rootMissing } from "../helpers/skip.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { callOversize } from "./_oversize.ts";
import { BODY_LIMIT, createRequests, type FuzzRequest } from "./_requests.ts";

const REQUESTS = Number(Deno.env.get("BERTH_FUZZ_REQUESTS") ?? 20_000);
const SEED = seedFromEnv("BERTH_FUZZ_SEED");
/** Compare the state every this many requests (and at the end). */
const CHECK_EVERY = 1_000;
/** An error reply names what was wrong; it never echoes a whole (perhaps huge) input. */
const ERROR_REPLY_MAX = 4096;
const ROUTE_PREFIX_REGEXP = /^(Plugin\.Activate|VolumeDriver\.|NetworkDriver\.|IpamDriver\.)/;
const ENCODER = new TextEncoder();

/** Real bridges need a namespace of our own: as root (always under CI), else no valid bridge. */
const withNetns = inCi() || (rootMissing() === null && onPath("ip"));

function say(text: string) {
  Deno.stderr.writeSync(ENCODER.encode(`${text}\n`));
}

/** Findings by kind: how many, and the first request that shows each. */
type Findings = Map<string, { count: number; first: string }>;

function note(findings: Findings, kind: string, example: () => string) {
  const seen = findings.get(kind);
  if (seen) seen.count++;
  else findings.set(kind, { count: 1, first: example() });
}

function preview(text: string | undefined, max = 300): string {
  if (text === undefined) return "(no body)";
  return text.length <= max
    ? JSON.stringify(text)
    : `${JSON.stringify(text.slice(0, max))}… (${text.length} chars)`;
}

function parsedBody(text: string | undefined): unknown {
  if (text === undefined || text.trim() === "") return {};
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** What is wrong with one reply, as finding kinds (empty when nothing). */
function replyProblems(request: FuzzRequest, reply: Reply): string[] {
  const { method } = request;
  const size = request.text === undefined ? 0 : ENCODER.encode(request.text).length;
  const routeLike = ROUTE_PREFIX_REGEXP.test(method) &&
    !/Nope|__proto__|^volumedriver/.test(method);
  const out: string[] = [];
  const expected = size > BODY_LIMIT ? [413] : routeLike ? [200, 400, 500] : [404];
  if (size > BODY_LIMIT && reply.status !== 413) {
    out.push(`a body over 1 MiB answered ${reply.status}, not 413`);
  } else if (!expected.includes(reply.status)) {
    out.push(`status ${reply.status} where ${expected.join("/")} belongs (${method})`);
  }
  if (typeof reply.body !== "object" || reply.body === null || Array.isArray(reply.body)) {
    out.push(`reply is not a JSON object (${method} ${reply.status})`);
  }
  if (reply.contentType !== PLUGIN_CONTENT_TYPE) out.push(`content type ${reply.contentType}`);
  if (reply.status === 200) return out;
  const body = (reply.body ?? {}) as Record<string, unknown>;
  if (typeof body.Err !== "string" || body.Err === "") out.push(`error reply without Err`);
  if (method.startsWith("IpamDriver.") && body.Error !== body.Err) {
    out.push(`IPAM error reply without Error (${reply.status})`);
  }
  if (reply.text.length > ERROR_REPLY_MAX) {
    out.push(`error reply over ${ERROR_REPLY_MAX} bytes (${method})`);
  }
  if (/Internal error/.test(reply.text)) out.push(`internal error (${method})`);
  return out;
}

/** Compares Berth with the model; on a difference notes it and takes Berth's state as the model. */
async function compareState(
  findings: Findings,
  when: string,
  model: Model,
  call: Call,
  get: (path: string) => Promise<{ status: number; text: string }>,
  volumesDir: string,
): Promise<Model> {
  const [state, problems] = await readState(call, get);
  const differences = [
    ...problems,
    ...compareModel(model, state),
    ...compareHost(model, volumesDir),
  ];
  for (const line of differences) {
    note(findings, `state differs from the model`, () => `${when}: ${line}`);
  }
  return differences.length === 0 ? model : state;
}

/** Checks one answered request and feeds it to the model. */
function judge(
  findings: Findings,
  run: { model: Model; volumesDir: string; acks: Map<string, number> },
  label: string,
  request: FuzzRequest,
  reply: Reply,
) {
  const { model, volumesDir, acks } = run;
  const example = () =>
    `${label} ${request.method} ${preview(request.text)} → ${reply.status} ${
      preview(reply.text, 200)
    }`;
  for (const kind of replyProblems(request, reply)) note(findings, kind, example);
  if (acknowledged(reply)) acks.set(request.method, (acks.get(request.method) ?? 0) + 1);
  const body = parsedBody(request.text);
  const expected = request.wellFormed
    ? expectedStatus(model, request.method, body as Record<string, unknown>)
    : null;
  if (expected !== null && expected !== reply.status) {
    const kind = `${request.method} answered ${reply.status} where the model says ${expected}`;
    note(findings, kind, example);
  }
  if (body === undefined && acknowledged(reply)) {
    note(findings, "acknowledged a body that is not JSON", example);
  }
  for (const line of applyReply(model, { method: request.method, body, reply }, volumesDir)) {
    note(findings, line.replace(/".*/, "…"), () => `${example()}: ${line}`);
  }
}

Deno.test(`fuzz: ${REQUESTS} seeded requests on every route keep Berth alive and equal to its model`, async () => {
  say(
    `fuzz seed ${SEED}, ${REQUESTS} requests (replay: BERTH_FUZZ_SEED=${SEED})` +
      (withNetns ? "" : "; no network namespace (not root): CreateNetwork bodies stay invalid"),
  );
  await using dir = await tempDir("berth-fuzz-");
  await using ns = withNetns ? await netns("fuzz") : null;
  const socket = join(dir.path, "berth.sock");
  const stateDir = join(dir.path, "state");
  const volumesDir = join(stateDir, "volumes");
  const adminSocket = join(dir.path, "admin.sock");
  const args = [
    ...["--socket", socket, "--state-dir", stateDir, "--admin", adminSocket],
    ...["--snapshot-every", "500"],
  ];
  const spawn = () => spawnBerth(args, {}, ns ? { netns: ns.name } : {});
  const random = createRandom(SEED);
  const next = createRequests(random, withNetns);
  const findings: Findings = new Map();
  let model = emptyModel();
  const acks = new Map<string, number>();
  const started = performance.now();
  {
    await using berth = spawn();
    await berth.ready();
    using client = pluginClient(socket);
    using admin = adminClient({ transport: "unix", path: adminSocket });
    for (let i = 1; i <= REQUESTS; i++) {
      const request = next(model);
      let reply: Reply;
      try {
        reply = (request.text?.length ?? 0) > BODY_LIMIT
          ? await callOversize(socket, request.method, request.text!)
          : await client.call(request.method, request.text);
      } catch (error) {
        const status = await Promise.race([
          berth.exited(),
          new Promise((r) => setTimeout(r, 2000)),
        ]);
        assert.fail(
          `request #${i} ${request.method} ${preview(request.text)} got no reply (${error}); ` +
            `Berth: ${JSON.stringify(status ?? "still running")}\n${berth.stderr().slice(-4000)}`,
        );
      }
      judge(findings, { model, volumesDir, acks }, `#${i}`, request, reply);
      if (i % CHECK_EVERY === 0 || i === REQUESTS) {
        model = await compareState(
          findings,
          `after #${i}`,
          model,
          client.call,
          admin.get,
          volumesDir,
        );
      }
    }
    const seconds = (performance.now() - started) / 1000;
    say(
      `fuzz: ${REQUESTS} requests in ${
        seconds.toFixed(1)
      } s; model: ${model.volumes.size} volumes, ${model.pools.size} pools`,
    );
    const counts = [...acks].sort().map(([method, n]) => `${method.replace("Driver.", ".")} ${n}`);
    say(`acknowledged: ${counts.join(", ")}`);
    berth.kill("SIGTERM");
    assert.equal((await berth.exited()).code, 0, berth.stderr().slice(-4000));
    for (const line of berth.stderr().split("\n").filter((l) => l.includes("[ERROR]"))) {
      note(findings, "[ERROR] on stderr", () => line.slice(0, 500));
    }
  }
  // The offline reader (time travel over snapshot and log) sees the same state.
  const [offline, unread] = await readStateOffline(stateDir);
  for (const line of [...unread, ...compareModel(model, offline)]) {
    note(findings, "berth state differs from the model", () => line);
  }
  const verified = await runBerth(["verify", "--state-dir", stateDir]);
  if (verified.code !== 0) {
    note(findings, "berth verify fails", () => verified.stderr.slice(0, 1000));
  }
  {
    // The same state after a restart: what the snapshot at stop and the log say.
    await using again = spawn();
    await again.ready();
    using client = pluginClient(socket);
    using admin = adminClient({ transport: "unix", path: adminSocket });
    await compareState(findings, "after a restart", model, client.call, admin.get, volumesDir);
  }
  const report = [...findings].map(([kind, { count, first }]) =>
    `- ${kind} ×${count}; first: ${first}`
  );
  assert.equal(
    report.length,
    0,
    `seed ${SEED}: ${report.length} kinds of failure\n${report.join("\n")}`,
  );
});
