// Every IpamDriver route through a real unix socket: pools, addresses, errors in `Error`.
import assert from "node:assert/strict";
import { startInProcess } from "../../helpers/plugin_socket.ts";
import { tempDir } from "../../helpers/temp_dir.ts";

type Body = Record<string, unknown>;
const GATEWAY = { RequestAddressType: "com.docker.network.gateway" };

Deno.test("plugin socket serves IPAM as dockerd drives it for a network", async (t) => {
  await using dir = await tempDir();
  await using berth = await startInProcess(dir.path);
  const call = async (method: string, body?: unknown) => {
    const reply = await berth.call(`IpamDriver.${method}`, body);
    return { status: reply.status, body: reply.body as Body };
  };
  await t.step("capabilities and address spaces, for empty bodies", async () => {
    assert.deepEqual((await call("GetCapabilities")).body, {
      RequiresMACAddress: false,
      RequiresRequestReplay: false,
    });
    assert.deepEqual((await call("GetDefaultAddressSpaces")).body, {
      LocalDefaultAddressSpace: "BerthLocal",
      GlobalDefaultAddressSpace: "BerthGlobal",
    });
  });
  await t.step("a given subnet, its gateway, then endpoints lowest free first", async () => {
    const pool = await call("RequestPool", {
      AddressSpace: "BerthLocal",
      Pool: "198.18.7.0/24",
      SubPool: "",
      Options: null,
      V6: false,
    });
    assert.deepEqual(pool.body, { PoolID: "198.18.7.0/24", Pool: "198.18.7.0/24", Data: {} });
    const gateway = await call("RequestAddress", {
      PoolID: "198.18.7.0/24",
      Address: "",
      Options: GATEWAY,
    });
    assert.deepEqual(gateway.body, { Address: "198.18.7.1/24", Data: {} });
    for (const expected of ["198.18.7.2/24", "198.18.7.3/24"]) {
      const reply = await call("RequestAddress", {
        PoolID: "198.18.7.0/24",
        Address: "",
        Options: null,
      });
      assert.equal(reply.body.Address, expected);
    }
  });
  await t.step("a released address is handed out again", async () => {
    assert.deepEqual(
      (await call("ReleaseAddress", { PoolID: "198.18.7.0/24", Address: "198.18.7.2" })).body,
      {},
    );
    const again = await call("RequestAddress", {
      PoolID: "198.18.7.0/24",
      Address: "",
      Options: null,
    });
    assert.equal(again.body.Address, "198.18.7.2/24");
  });
  await t.step("a given address (--ip) is reserved, a taken one refused", async () => {
    const ip = await call("RequestAddress", { PoolID: "198.18.7.0/24", Address: "198.18.7.50" });
    assert.equal(ip.body.Address, "198.18.7.50/24");
    const taken = await call("RequestAddress", { PoolID: "198.18.7.0/24", Address: "198.18.7.50" });
    assert.equal(taken.status, 500);
    const message =
      'Cannot reserve address "198.18.7.50" in pool "198.18.7.0/24": already in use (endpoint)';
    assert.deepEqual(taken.body, { Err: message, Error: message });
  });
  await t.step(
    "an overlapping subnet is refused; no subnet gets a different free pool each time",
    async () => {
      const clash = await call("RequestPool", { Pool: "198.18.0.0/16" });
      assert.equal(clash.status, 500);
      assert.match(String(clash.body.Error), /overlaps pool "198\.18\.7\.0\/24"/);
      const pools = [];
      for (let n = 0; n < 3; n++) {
        pools.push(
          (await call("RequestPool", { Pool: "", V6: false })).body.Pool,
        );
      }
      assert.deepEqual(pools, ["198.18.0.0/24", "198.18.1.0/24", "198.18.2.0/24"]);
    },
  );
  await t.step("releasing the pool frees its range for the next request", async () => {
    assert.deepEqual((await call("ReleasePool", { PoolID: "198.18.1.0/24" })).body, {});
    assert.equal((await call("RequestPool", {})).body.Pool, "198.18.1.0/24");
  });
  await t.step("bad requests answer 400 with the message in Err and Error", async () => {
    const cases: [string, unknown, RegExp][] = [
      ["RequestPool", { Pool: "198.18.7.0/33" }, /prefix length/],
      ["RequestPool", { Pool: "fd00::/64", V6: true }, /IPv6/],
      ["RequestPool", { Pool: "", SubPool: "198.18.9.0/25" }, /SubPool/],
      ["RequestPool", { Options: { color: "blue" } }, /unknown IPAM option "color"/],
      ["RequestPool", "{nope", /body is not JSON/],
      [
        "RequestAddress",
        { PoolID: "198.18.7.0/24", Address: "198.18.8.1" },
        /not a usable address/,
      ],
      [
        "RequestAddress",
        { PoolID: "198.18.7.0/24", Address: "198.18.7.255" },
        /not a usable address/,
      ],
      ["RequestAddress", { PoolID: "" }, /PoolID must not be empty/],
      ["ReleaseAddress", { PoolID: "198.18.7.0/24", Address: "x" }, /Invalid/],
    ];
    for (const [method, body, message] of cases) {
      const reply = await call(method, body);
      assert.equal(reply.status, 400, `${method} ${JSON.stringify(body)}`);
      assert.match(String(reply.body.Error), message);
      assert.equal(reply.body.Err, reply.body.Error);
    }
  });
  await t.step("an unknown pool is a clear error; releases are idempotent", async () => {
    const unknown = await call("RequestAddress", { PoolID: "198.19.99.0/24", Address: "" });
    assert.equal(unknown.status, 500);
    assert.equal(unknown.body.Error, 'Pool "198.19.99.0/24" not found');
    // dockerd resends a release whose answer a crash lost: already released is released.
    for (
      const [method, body] of [
        ["ReleaseAddress", { PoolID: "198.18.7.0/24", Address: "198.18.7.99" }],
        ["ReleaseAddress", { PoolID: "198.19.99.0/24", Address: "198.19.99.2" }],
        ["ReleasePool", { PoolID: "198.19.99.0/24" }],
      ] as const
    ) {
      assert.deepEqual(await call(method, body), { status: 200, body: {} });
    }
  });
  await t.step("a second gateway request gets the pool's gateway back", async () => {
    const again = await call("RequestAddress", { PoolID: "198.18.7.0/24", Options: GATEWAY });
    assert.equal(again.body.Address, "198.18.7.1/24");
  });
  assert.deepEqual(berth.problems(), []);
});

Deno.test("plugin socket never hands out one address twice under 100 concurrent requests", async () => {
  await using dir = await tempDir();
  await using berth = await startInProcess(dir.path);
  await berth.call("IpamDriver.RequestPool", { Pool: "198.18.40.0/24" });
  const replies = await Promise.all(
    Array.from(
      { length: 100 },
      () => berth.call("IpamDriver.RequestAddress", { PoolID: "198.18.40.0/24", Address: "" }),
    ),
  );
  const addresses = replies.map((reply) => (reply.body as Body).Address as string);
  assert.equal(new Set(addresses).size, 100, "all distinct");
  const expected = Array.from({ length: 100 }, (_, n) => `198.18.40.${n + 1}/24`);
  assert.deepEqual([...addresses].sort(), [...expected].sort());
  const pools = await Promise.all(
    Array.from({ length: 20 }, () => berth.call("IpamDriver.RequestPool", { Pool: "" })),
  );
  const cidrs = pools.map((reply) => (reply.body as Body).Pool);
  assert.equal(new Set(cidrs).size, 20, "concurrent pool requests get distinct pools");
});

Deno.test("IPAM pools and addresses survive a restart", async () => {
  await using dir = await tempDir();
  {
    await using berth = await startInProcess(dir.path);
    await berth.call("IpamDriver.RequestPool", { Pool: "198.18.9.0/24" });
    await berth.call("IpamDriver.RequestAddress", { PoolID: "198.18.9.0/24", Options: GATEWAY });
    await berth.call("IpamDriver.RequestAddress", { PoolID: "198.18.9.0/24" });
  }
  await using again = await startInProcess(dir.path);
  const next = await again.call("IpamDriver.RequestAddress", { PoolID: "198.18.9.0/24" });
  assert.equal((next.body as Body).Address, "198.18.9.3/24");
  const clash = await again.call("IpamDriver.RequestPool", { Pool: "198.18.9.0/24" });
  assert.equal(clash.status, 500);
});
