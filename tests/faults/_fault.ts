// What the fault suite shares: a start that must be refused (bounded, so that a Berth that does
// start fails the test instead of hanging it), and small waits. Imports nothing of src/.
import { spawnBerth } from "../helpers/berth_process.ts";

/** Runs `berth serve args`, which must exit on its own within `timeoutMs`; its code and stderr. */
export async function refusedStart(
  args: string[],
  timeoutMs = 15_000,
): Promise<{ code: number; stderr: string }> {
  await using berth = spawnBerth(args);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), timeoutMs));
  const status = await Promise.race([berth.exited(), late]);
  clearTimeout(timer);
  if (status === null) throw new Error(`Berth started where it must refuse:\n${berth.stderr()}`);
  return { code: status.code, stderr: berth.stderr() };
}
