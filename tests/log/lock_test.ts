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

Deno.test("lockStateDir still refuses a second holder once the lock file is deleted", async () => {
  await using dir = await tempDir();
  const first = await lockStateDir(dir.path);
  await Deno.remove(first.path);
  await assert.rejects(() => lockStateDir(dir.path), StateDirLockedError);
  first.release();
  (await lockStateDir(dir.path)).release();
});
