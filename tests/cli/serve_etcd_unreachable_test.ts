// A node whose etcd answers nothing: the start fails in one line that says why, once.
import assert from "node:assert/strict";
import { join } from "node:path";
import { spawnBerth } from "../helpers/berth_process.ts";
import { rootMissing, skipUnless } from "../helpers/skip.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const NAME = "serve --store etcd with no member answering fails in one clear line";

Deno.test({
  name: NAME,
  ignore: skipUnless(NAME, rootMissing()),
  async fn() {
    await using dir = await tempDir("berth-unreachable-");
    await using berth = spawnBerth([
      "serve",
      ...["--socket", join(dir.path, "b.sock"), "--state-dir", join(dir.path, "state")],
      ...["--admin", "off", "--store", "etcd", "--node", "a"],
      ...["--etcd-endpoints", "http://127.0.0.1:1"],
    ]);
    assert.equal((await berth.exited()).code, 1);
    const errors = berth.stderr().split("\n").filter((line) => line.startsWith("[ERROR]"));
    assert.equal(errors.length, 1, berth.stderr());
    assert.match(
      errors[0]!,
      /^\[ERROR\] berth: Store unavailable: cannot read the revision within 5000 ms: .*ECONNREFUSED 127\.0\.0\.1:1$/,
    );
    assert.doesNotMatch(errors[0]!, /Store unavailable.*Store unavailable|Resolution note/);
  },
});
