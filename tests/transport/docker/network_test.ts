// The NetworkDriver and IpamDriver together through a real socket, with real bridges and veths
// in namespaces the test makes: Berth's "host" namespace and one per container.
import assert from "node:assert/strict";
import { join } from "node:path";
import { ip, links, netns, raced, racingIp, skipUnlessNet } from "../../helpers/netns.ts";
import { startInProcess } from "../../helpers/plugin_socket.ts";
import { tempDir } from "../../helpers/temp_dir.ts";

type Body = Record<string, unknown>;
const ignore = skipUnlessNet(import.meta.url.split("/").pop()!);
const hex = (seed: string) => seed.repeat(64).slice(0, 64);
const NET = hex("a1");
const EP1 = hex("b2");
const EP2 = hex("c3");
const POOL = "198.18.7.0/24";

function createNetwork(id: string, generic: Record<string, string> = {}) {
  return {
    NetworkID: id,
    Options: { "com.docker.network.generic": generic, "com.docker.network.enable_ipv6": false },
    IPv4Data: [{ AddressSpace: "BerthLocal", Pool: POOL, Gateway: "198.18.7.1/24" }],
    IPv6Data: [],
  };
}

const endpoint = (id: string, address: string) => ({
  NetworkID: NET,
  EndpointID: id,
  Interface: { Address: address, AddressIPv6: "", MacAddress: "" },
  Options: { "com.docker.network.endpoint.exposedports": [], "com.docker.network.portmap": [] },
});

Deno.test({
  name: "network driver: two joined endpoints ping each other, and nothing is left after",
  ignore,
  async fn() {
    await using dir = await tempDir();
    await using host = await netns("host");
    await using a = await netns("a");
    await using b = await netns("b");
    await using berth = await startInProcess(dir.path, { netns: host.name });
    const call = async (method: string, body?: unknown) => {
      const reply = await berth.call(method, body);
      assert.equal(reply.status, 200, `${method}: ${reply.text}`);
      return reply.body as Body;
    };
    assert.deepEqual(await call("NetworkDriver.GetCapabilities"), {
      Scope: "local",
      ConnectivityScope: "local",
    });
    await call("IpamDriver.RequestPool", { Pool: POOL });
    await call("IpamDriver.RequestAddress", {
      PoolID: POOL,
      Options: { RequestAddressType: "com.docker.network.gateway" },
    });
    assert.deepEqual(
      await call("NetworkDriver.CreateNetwork", createNetwork(NET, { mtu: "1400" })),
      {},
    );
    const bridge = (await links(host.name)).find((name) => name.startsWith("bthb"));
    assert.ok(bridge, "the bridge exists");
    assert.match(await ip("-n", host.name, "addr", "show", bridge), /inet 198\.18\.7\.1\/24/);
    assert.match(await ip("-n", host.name, "link", "show", bridge), /mtu 1400/);

    const peers: string[] = [];
    for (const [id, ns] of [[EP1, a.name], [EP2, b.name]] as const) {
      const address = (await call("IpamDriver.RequestAddress", { PoolID: POOL })).Address as string;
      assert.deepEqual(await call("NetworkDriver.CreateEndpoint", endpoint(id, address)), {
        Interface: null,
      });
      const joined = await call("NetworkDriver.Join", {
        NetworkID: NET,
        EndpointID: id,
        SandboxKey: `/var/run/docker/netns/${ns}`,
        Options: {},
      });
      const { SrcName, DstPrefix } = joined.InterfaceName as { SrcName: string; DstPrefix: string };
      assert.equal(DstPrefix, "eth");
      assert.equal(joined.Gateway, "198.18.7.1");
      assert.equal(joined.DisableGatewayService, true);
      // What libnetwork does with SrcName: into the container's namespace, address, up.
      await ip("-n", host.name, "link", "set", SrcName, "netns", ns);
      await ip("-n", ns, "addr", "add", address, "dev", SrcName);
      await ip("-n", ns, "link", "set", SrcName, "up");
      peers.push(SrcName);
    }
    const ping = await new Deno.Command("ip", {
      args: ["netns", "exec", a.name, "busybox", "ping", "-c", "2", "-W", "2", "198.18.7.3"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(
      ping.success,
      new TextDecoder().decode(ping.stdout) + new TextDecoder().decode(ping.stderr),
    );

    const refused = await berth.call("NetworkDriver.DeleteNetwork", { NetworkID: NET });
    assert.equal(refused.status, 500);
    assert.match(String((refused.body as Body).Err), /2 endpoints/);

    for (const [index, id] of [EP1, EP2].entries()) {
      await call("NetworkDriver.Leave", { NetworkID: NET, EndpointID: id });
      const ns = index === 0 ? a.name : b.name;
      await ip("-n", ns, "link", "set", peers[index]!, "netns", host.name); // libnetwork moves it back
      await call("NetworkDriver.DeleteEndpoint", { NetworkID: NET, EndpointID: id });
      await call("IpamDriver.ReleaseAddress", { PoolID: POOL, Address: `198.18.7.${index + 2}` });
    }
    await call("IpamDriver.ReleaseAddress", { PoolID: POOL, Address: "198.18.7.1" });
    await call("IpamDriver.ReleasePool", { PoolID: POOL });
    assert.deepEqual(await call("NetworkDriver.DeleteNetwork", { NetworkID: NET }), {});
    assert.deepEqual(await links(host.name), ["lo"], "no bridge or veth of the test remains");
    assert.deepEqual(
      await call("NetworkDriver.DeleteNetwork", { NetworkID: NET }),
      {},
      "idempotent",
    );
    assert.deepEqual(berth.problems(), []);
  },
});

Deno.test({
  name: "network driver refuses bad input and leaves no interface behind",
  ignore,
  async fn() {
    await using dir = await tempDir();
    await using host = await netns("host");
    await using berth = await startInProcess(dir.path, { netns: host.name });
    const cases: [string, unknown, number, RegExp][] = [
      ["CreateNetwork", createNetwork(NET, { color: "blue" }), 400, /unknown option "color"/],
      ["CreateNetwork", createNetwork(NET, { mtu: "9" }), 400, /option "mtu" must be from 68/],
      ["CreateNetwork", { ...createNetwork(NET), IPv6Data: [{ Pool: "fd00::/64" }] }, 400, /IPv6/],
      ["CreateNetwork", createNetwork("not-hex"), 400, /NetworkID must be a hex id/],
      ["CreateNetwork", "{", 400, /body is not JSON/],
      ["CreateEndpoint", endpoint(EP1, "198.18.7.2/24"), 500, /Network "a1a1/],
      ["Join", { NetworkID: NET, EndpointID: EP1, SandboxKey: "" }, 500, /not found/],
      ["Leave", { NetworkID: NET }, 400, /EndpointID/],
    ];
    for (const [method, body, status, message] of cases) {
      const reply = await berth.call(`NetworkDriver.${method}`, body);
      assert.equal(reply.status, status, `${method}: ${reply.text}`);
      assert.match(String((reply.body as Body).Err), message);
    }
    assert.deepEqual(await links(host.name), ["lo"]);
    for (const method of ["DiscoverNew", "DiscoverDelete"]) {
      const reply = await berth.call(`NetworkDriver.${method}`, {
        DiscoveryType: 1,
        DiscoveryData: {},
      });
      assert.deepEqual(reply.body, {});
    }
    for (
      const method of [
        "ProgramExternalConnectivity",
        "RevokeExternalConnectivity",
        "EndpointOperInfo",
      ]
    ) {
      const reply = await berth.call(`NetworkDriver.${method}`, {
        NetworkID: NET,
        EndpointID: EP1,
      });
      assert.equal(reply.status, 200, method);
    }
  },
});

Deno.test({
  name: "network reconcile recreates a lost bridge and veth, and reports, or removes, stray links",
  ignore,
  async fn() {
    await using dir = await tempDir();
    await using host = await netns("host");
    {
      await using berth = await startInProcess(dir.path, { netns: host.name });
      await berth.call("NetworkDriver.CreateNetwork", createNetwork(NET));
      await berth.call("NetworkDriver.CreateEndpoint", endpoint(EP1, "198.18.7.2/24"));
      const join = { NetworkID: NET, EndpointID: EP1, SandboxKey: "", Options: {} };
      assert.equal((await berth.call("NetworkDriver.Join", join)).status, 200);
    }
    const [bridge] = (await links(host.name)).filter((name) => name.startsWith("bthb"));
    const [veth] = (await links(host.name)).filter((name) => name.startsWith("bthh"));
    await ip("-n", host.name, "link", "del", veth!); // takes its peer with it
    await ip("-n", host.name, "link", "del", bridge!);
    await ip("-n", host.name, "link", "add", "bthb00000000000", "type", "bridge");
    await ip("-n", host.name, "link", "add", "other0", "type", "bridge");
    // Another Berth's live bridge (another state dir) on the same host: never ours to touch.
    await ip("-n", host.name, "link", "add", "bthb11111111111", "type", "bridge");
    await ip("-n", host.name, "link", "set", "dev", "bthb11111111111", "alias", "berth:/elsewhere");
    {
      await using berth = await startInProcess(dir.path, { netns: host.name });
      assert.ok((await links(host.name)).includes(bridge!), "the lost bridge is back");
      assert.match(
        await ip("-n", host.name, "link", "show", veth!),
        new RegExp(`master ${bridge}`),
      );
      assert.ok(
        berth.errors.some((e) => /endpoint\/b2b2.*endpoint\.veth\.lost/.test(e)),
        berth.errors.join("\n"),
      );
      assert.ok(
        berth.errors.some((e) => /network\/a1a1.*network\.bridge\.lost/.test(e)),
        berth.errors.join("\n"),
      );
      assert.ok(berth.errors.some((e) => /bthb00000000000 .*left alone/.test(e)));
      const log = await Deno.readTextFile(join(berth.stateDir, "log", "00000000000000000001.log"));
      assert.match(log, /"type":"network\.bridge\.lost"/);
    }
    {
      await using berth = await startInProcess(dir.path, { netns: host.name, repairOrphans: true });
      assert.ok(berth.errors.some((e) => /bthb00000000000 .*removed/.test(e)));
      assert.ok(!berth.errors.some((e) => e.includes("bthb11111111111")), berth.errors.join("\n"));
    }
    assert.match(
      await ip("-n", host.name, "link", "show", bridge!),
      /alias berth:\//,
      "ours is tagged",
    );
    assert.deepEqual(
      await links(host.name),
      [bridge!, "bthb11111111111", veth!, veth!.replace("bthh", "bthc"), "lo", "other0"].sort(),
      "others' links untouched",
    );
  },
});

Deno.test({
  name:
    "network driver: DeleteNetwork takes a veth that vanishes while it looks as gone, not a 500",
  ignore,
  async fn() {
    await using dir = await tempDir();
    await using host = await netns("host");
    // An endpoint whose Leave and DeleteEndpoint were lost: DeleteNetwork looks for its peer, and
    // the pair vanishes in the middle of that look (`ip` answers the kernel's "No such device").
    const ep = `bthh${EP1.slice(0, 11)}`;
    const racing = await racingIp(dir.path, { during: "show dev bthc", vanish: ep, ns: host.name });
    await using berth = await startInProcess(dir.path, { netns: host.name, ip: racing });
    const call = async (method: string, body: unknown) => {
      const reply = await berth.call(method, body);
      assert.equal(reply.status, 200, `${method}: ${reply.text}`);
    };
    await call("NetworkDriver.CreateNetwork", createNetwork(NET));
    await call("NetworkDriver.CreateEndpoint", endpoint(EP1, "198.18.7.2/24"));
    await call("NetworkDriver.Join", { NetworkID: NET, EndpointID: EP1, SandboxKey: "" });
    await call("NetworkDriver.DeleteNetwork", { NetworkID: NET });
    assert.ok(await raced(dir.path), "the veth vanished during DeleteNetwork");
    assert.deepEqual(await links(host.name), ["lo"]);
    assert.deepEqual(berth.problems(), []);
  },
});
