import assert from "node:assert/strict";
import { lockStateDir, StateDirLockedError } from "../../src/log/lock.ts";
import { tempDir } from "../helpers/temp_dir.ts";

Deno.test("lockStateDir refuses a second holder and names the first", async () => {
  await using dir = await tempDir();
  const first = await lockStateDir(dir.path);
  await assert.rejects(
    () => lockStateDir(dir.path),
    (error: unknown) => {
      assert.ok(error instanceof StateDirLockedError);
      assert.match(error.message, new RegExp(`held by another Berth \\(pid ${Deno.pid}, started`));
      return true;
    },
  );
  first.release();
  const second = await lockStateDir(dir.path);
  assert.equal((await Deno.stat(second.path)).mode! & 0o777, 0o600);
  second.release();
});
