// The crash soak, bounded for every test run: BERTH_SOAK_KILLS SIGKILLs (default 50) of a real
// Berth under 12 workers; every acknowledged change must survive each restart. The full run is
// `deno task soak --kills 1000`. Replay the random choices with BERTH_SOAK_SEED=<printed seed>
// (the interleaving of the workers is the machine's own).
import assert from "node:assert/strict";
import { seedFromEnv } from "../helpers/random.ts";
import { runSoak } from "./_soak.ts";

const KILLS = Number(Deno.env.get("BERTH_SOAK_KILLS") ?? 50);
const SEED = seedFromEnv("BERTH_SOAK_SEED");

Deno.test(`soak: ${KILLS} SIGKILLs under load lose no acknowledged change`, async () => {
  const result = await runSoak({ kills: KILLS, workers: 12, seed: SEED });
  Deno.stderr.writeSync(new TextEncoder().encode(`${result.summary}\n`));
  assert.deepEqual(
    result.problems,
    [],
    `seed ${SEED}:\n${result.problems.slice(0, 40).join("\n")}`,
  );
  assert.deepEqual(result.verifyFailures, [], `seed ${SEED}: berth verify failed`);
  assert.equal(result.kills, KILLS);
  assert.ok(result.acknowledged > KILLS, `only ${result.acknowledged} acknowledged calls`);
});
