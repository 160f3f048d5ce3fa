// `deno task soak [--kills N] [--workers N] [--seed N]`: the crash soak of tests/soak/soak_test.ts
// at any length (default 1000 kills). Prints progress to stderr and the summary line to stdout;
// exit 1 with what was found wrong.
import { parseArgs } from "node:util";
import { freshSeed } from "../helpers/random.ts";
import { runSoak } from "./_soak.ts";

const ENCODER = new TextEncoder();
const { values } = parseArgs({
  args: Deno.args,
  options: {
    kills: { type: "string", default: "1000" },
    workers: { type: "string", default: "12" },
    seed: { type: "string" },
  },
});
const whole = (text: string, flag: string) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`--${flag} "${text}" must be a whole number from 1`);
  }
  return n;
};
const seed = values.seed === undefined ? freshSeed() : Number(values.seed);
const result = await runSoak({
  kills: whole(values.kills, "kills"),
  workers: whole(values.workers, "workers"),
  seed,
  progress: (line) => Deno.stderr.writeSync(ENCODER.encode(`${line}\n`)),
});
Deno.stdout.writeSync(ENCODER.encode(`${result.summary}\n`));
const found = [...result.problems.slice(0, 60), ...result.verifyFailures.slice(0, 10)];
if (found.length > 0) {
  Deno.stderr.writeSync(ENCODER.encode(`${found.join("\n")}\n`));
  Deno.exit(1);
}
