// A real log on disk for the log-reading tests: a real engine over a file store with small
// segments, driven by the test's own steps, with a recording backend in place of the host.
import { createEngine, type Engine } from "../../src/engine/engine.ts";
import { createVolumeEffects } from "../../src/engine/volume_effects.ts";
import { openFileStore } from "../../src/log/file_store.ts";
import type { LogRecord } from "../../src/log/store.ts";
import { createRecordingBackend } from "./recording_backend.ts";

/** Runs `steps` on an engine logging to `dir` (segments of `segmentBytes`); returns the records. */
export async function driveLog(
  dir: string,
  steps: (engine: Engine) => Promise<void>,
  segmentBytes = 400,
): Promise<LogRecord[]> {
  const store = await openFileStore({ dir, warn: () => {}, segmentBytes });
  const records: LogRecord[] = [];
  store.subscribe((record) => records.push(record));
  let now = 1_700_000_000_000;
  const engine = createEngine({
    store,
    effects: { volume: createVolumeEffects(createRecordingBackend().backend) },
    clock: () => ++now,
  });
  try {
    await steps(engine);
  } finally {
    await store.close();
  }
  return records;
}
