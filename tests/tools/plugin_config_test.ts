import assert from "node:assert/strict";
import { pluginConfig, PROPAGATED_MOUNT, STATE_DIR } from "../../tools/plugin_config.ts";

const env = (name: string) => pluginConfig("1.0").env.find((item) => item.name === name);

Deno.test("pluginConfig declares the three drivers, host networking and both capabilities", () => {
  const config = pluginConfig("1.0");
  assert.deepEqual(config.interface.types, [
    "docker.volumedriver/1.0",
    "docker.networkdriver/1.0",
    "docker.ipamdriver/1.0",
  ]);
  assert.equal(config.network.type, "host");
  assert.deepEqual(config.linux.capabilities.toSorted(), ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]);
  assert.ok(config.entrypoint.includes("--cached-only"), "a start never reaches a registry");
});

Deno.test("pluginConfig puts volumes strictly below propagatedMount and state on a bind mount", () => {
  const config = pluginConfig("1.0");
  assert.equal(config.propagatedMount, PROPAGATED_MOUNT);
  // Mountpoints are VOLUMES_DIR/NAME/_data: strictly below propagatedMount + "/".
  assert.equal(env("BERTH_VOLUMES_DIR")?.value, PROPAGATED_MOUNT);
  assert.deepEqual(env("BERTH_VOLUMES_DIR")?.settable, []);
  const [state] = config.mounts;
  assert.equal(state?.type, "bind");
  assert.equal(state?.destination, STATE_DIR);
  assert.deepEqual(state?.settable, ["source"]);
  assert.equal(env("BERTH_STATE_DIR")?.value, STATE_DIR);
  assert.equal(env("BERTH_SOCKET")?.value, `/run/docker/plugins/${config.interface.socket}`);
});

Deno.test("pluginConfig lets serve's settings be set, and leaves them unset by default", () => {
  for (
    const name of [
      "BERTH_POOL_RANGE",
      "BERTH_POOL_SIZE",
      "BERTH_RECONCILE",
      // A managed Berth can be a node of a cluster on etcd.
      "BERTH_STORE",
      "BERTH_ETCD_ENDPOINTS",
      "BERTH_CLUSTER",
      "BERTH_NODE",
      "BERTH_ADVERTISE_ADDRESS",
    ]
  ) {
    assert.deepEqual(env(name)?.settable, ["value"], name);
    assert.equal(env(name)?.value, null, name);
  }
});
