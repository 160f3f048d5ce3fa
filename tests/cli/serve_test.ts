import assert from "node:assert/strict";
import { parseServe } from "../../src/cli/serve.ts";

function setEnv(name: string, value: string | undefined) {
  if (value === undefined) Deno.env.delete(name);
  else Deno.env.set(name, value);
}

function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const before = Object.keys(vars).map((name) => [name, Deno.env.get(name)] as const);
  for (const [name, value] of Object.entries(vars)) setEnv(name, value);
  try {
    return fn();
  } finally {
    for (const [name, value] of before) setEnv(name, value);
  }
}

Deno.test("parseServe keeps volumes in STATE-DIR/volumes unless told otherwise", () => {
  withEnv({ BERTH_VOLUMES_DIR: undefined }, () => {
    assert.equal(parseServe(["--state-dir", "/s"]).volumesDir, "/s/volumes");
    assert.equal(parseServe(["--state-dir", "/s", "--volumes-dir", "/v"]).volumesDir, "/v");
  });
});

Deno.test("parseServe reads BERTH_VOLUMES_DIR, and the flag beats it", () => {
  withEnv({ BERTH_VOLUMES_DIR: "/mnt/volumes" }, () => {
    assert.equal(parseServe(["--state-dir", "/s"]).volumesDir, "/mnt/volumes");
    assert.equal(parseServe(["--volumes-dir", "/v"]).volumesDir, "/v");
  });
});

Deno.test("parseServe knows a managed plugin by BERTH_MANAGED_PLUGIN=1 only", () => {
  withEnv({ BERTH_MANAGED_PLUGIN: "1" }, () => assert.equal(parseServe([]).managed, true));
  withEnv({ BERTH_MANAGED_PLUGIN: "yes" }, () => assert.equal(parseServe([]).managed, false));
  withEnv({ BERTH_MANAGED_PLUGIN: undefined }, () => assert.equal(parseServe([]).managed, false));
});

Deno.test("parseServe takes --advertise-address on etcd only, as an IPv4 address", () => {
  const etcd = ["--store", "etcd", "--etcd-endpoints", "http://127.0.0.1:2379", "--node", "a"];
  withEnv({ BERTH_ADVERTISE_ADDRESS: undefined, BERTH_STORE: undefined }, () => {
    assert.equal(parseServe(etcd).advertise, null);
    assert.equal(
      parseServe([...etcd, "--advertise-address", "198.19.0.1"]).advertise,
      "198.19.0.1",
    );
    assert.throws(
      () => parseServe([...etcd, "--advertise-address", "198.19.0.300"]),
      /advertise address "198.19.0.300" must be an IPv4 address/,
    );
    assert.throws(
      () => parseServe(["--advertise-address", "198.19.0.1"]),
      /--advertise-address needs --store etcd/,
    );
  });
  // Set host-wide, the env is ignored by a Berth on the file store.
  withEnv({ BERTH_ADVERTISE_ADDRESS: "198.19.0.2", BERTH_STORE: undefined }, () => {
    assert.equal(parseServe([]).advertise, null);
    assert.equal(parseServe(etcd).advertise, "198.19.0.2");
  });
});
