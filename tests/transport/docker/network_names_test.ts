// Link names under attack: ids that share their first 11 hex characters, one `-o bridge=` for two
// networks, a bridge name another Berth holds. Berth keeps each network on a bridge of its own
// and deletes only links it made. Real links in namespaces the test makes, through the socket.
import assert from "node:assert/strict";
import { ip, links, netns, skipUnlessNet } from "../../helpers/netns.ts";
import { type InProcessBerth, startInProcess } from "../../helpers/plugin_socket.ts";
import { tempDir } from "../../helpers/temp_dir.ts";

const ignore = skipUnlessNet(import.meta.url.split("/").pop()!);
// Twins: the same first 11 hex characters, the bth names Berth derived from an id before.
const N1 = `abcdef01234${"1".repeat(53)}`;
const N2 = `abcdef01234${"2".repeat(53)}`;
const E1 = `0123456789a${"e".repeat(53)}`;
const E2 = `0123456789a${"f".repeat(53)}`;

type Body = Record<string, unknown>;

function createNetwork(id: string, subnet: number, generic: Record<string, string> = {}) {
  const pool = `198.18.${subnet}.0/24`;
  return {
    NetworkID: id,
    Options: { "com.docker.network.generic": generic },
    IPv4Data: [{ AddressSpace: "BerthLocal", Pool: pool, Gateway: `198.18.${subnet}.1/24` }],
    IPv6Data: [],
  };
}

function caller(berth: InProcessBerth) {
  return async (method: string, body: unknown): Promise<Body> => {
    const reply = await berth.call(`NetworkDriver.${method}`, body);
    assert.equal(reply.status, 200, `${method}: ${reply.text}`);
    return reply.body as Body;
  };
}

async function master(ns: string, name: string): Promise<string | undefined> {
  return JSON.parse(await ip("-n", ns, "-json", "link", "show", "dev", name))[0].master;
}

Deno.test({
  name: "networks and endpoints whose ids share 11 hex chars get links of their own, for good",
  ignore,
  async fn() {
    await using dir = await tempDir();
    await using host = await netns("host");
    const srcNames: string[] = [];
    {
      await using berth = await startInProcess(dir.path, { netns: host.name });
      const call = caller(berth);
      // At once: both find the first name free, one claims it, the other takes the next.
      await Promise.all([
        call("CreateNetwork", createNetwork(N1, 11)),
        call("CreateNetwork", createNetwork(N2, 12)),
      ]);
      for (const [id, address] of [[E1, "198.18.12.2/24"], [E2, "198.18.12.3/24"]]) {
        const Interface = { Address: address, AddressIPv6: "", MacAddress: "" };
        await call("CreateEndpoint", { NetworkID: N2, EndpointID: id, Interface });
        const joined = await call("Join", { NetworkID: N2, EndpointID: id, SandboxKey: "" });
        srcNames.push((joined.InterfaceName as { SrcName: string }).SrcName);
      }
    }
    const bridges = (await links(host.name)).filter((name) => name.startsWith("bthb"));
    assert.equal(bridges.length, 2, `one bridge each: ${bridges}`);
    assert.equal(new Set(srcNames).size, 2, `one veth pair each: ${srcNames}`);
    const hosts = srcNames.map((peer) => `bthh${peer.slice(4)}`);
    const bridgeOfN2 = await master(host.name, hosts[0]!);
    assert.equal(await master(host.name, hosts[1]!), bridgeOfN2);
    {
      // Replay gives the names the log recorded; deleting N1 leaves N2's bridge and ports alone.
      await using berth = await startInProcess(dir.path, { netns: host.name });
      const call = caller(berth);
      const again = await call("Join", { NetworkID: N2, EndpointID: E2, SandboxKey: "" });
      assert.equal((again.InterfaceName as { SrcName: string }).SrcName, srcNames[1]);
      await call("DeleteNetwork", { NetworkID: N1 });
      for (const name of hosts) assert.equal(await master(host.name, name), bridgeOfN2, name);
      for (const id of [E1, E2]) {
        await call("Leave", { NetworkID: N2, EndpointID: id });
        await call("DeleteEndpoint", { NetworkID: N2, EndpointID: id });
      }
      await call("DeleteNetwork", { NetworkID: N2 });
      assert.deepEqual(berth.problems(), []);
    }
    assert.deepEqual(await links(host.name), ["lo"]);
  },
});

Deno.test({
  name: "a -o bridge= name another network holds is refused, and stays with its network",
  ignore,
  async fn() {
    await using dir = await tempDir();
    await using host = await netns("host");
    await using berth = await startInProcess(dir.path, { netns: host.name });
    const call = caller(berth);
    await call("CreateNetwork", createNetwork(N1, 11, { bridge: "bthshared" }));
    const refused = await berth.call(
      "NetworkDriver.CreateNetwork",
      createNetwork(N2, 12, { bridge: "bthshared" }),
    );
    assert.equal(refused.status, 500, refused.text);
    assert.equal(
      (refused.body as Body).Err,
      `Cannot create network "${N2.slice(0, 12)}": bridge "bthshared" is the bridge of ` +
        `network "${N1.slice(0, 12)}"`,
    );
    await call("DeleteNetwork", { NetworkID: N2 });
    assert.deepEqual(await links(host.name), ["bthshared", "lo"]);
    await call("DeleteNetwork", { NetworkID: N1 });
    assert.deepEqual(await links(host.name), ["lo"]);
  },
});

Deno.test({
  name: "a -o bridge= naming a link Berth did not make is refused, and the link left as it was",
  ignore,
  async fn() {
    await using dir = await tempDir();
    await using host = await netns("host");
    // Another Berth's bridge (another state dir), and a bridge someone made by hand.
    await ip("-n", host.name, "link", "add", "bthelse", "type", "bridge");
    await ip("-n", host.name, "link", "set", "dev", "bthelse", "alias", "berth:/elsewhere");
    await ip("-n", host.name, "link", "add", "bthhand", "type", "bridge");
    await using berth = await startInProcess(dir.path, { netns: host.name });
    const cases = [[N1, "bthelse", /belongs to berth:\/elsewhere/], [N2, "bthhand", /not Berth's/]];
    for (const [id, bridge, why] of cases as [string, string, RegExp][]) {
      const refused = await berth.call(
        "NetworkDriver.CreateNetwork",
        createNetwork(id, 11, { bridge }),
      );
      assert.equal(refused.status, 500, refused.text);
      const message = String((refused.body as Body).Err);
      assert.match(
        message,
        new RegExp(`^Cannot create the bridge of network "${id.slice(0, 12)}"`),
      );
      assert.match(message, new RegExp(`"${bridge}"`));
      assert.match(message, why);
      await caller(berth)("DeleteNetwork", { NetworkID: id });
    }
    assert.deepEqual(await links(host.name), ["bthelse", "bthhand", "lo"]);
    assert.match(await ip("-n", host.name, "link", "show", "bthelse"), /alias berth:\/elsewhere/);
    assert.doesNotMatch(await ip("-n", host.name, "link", "show", "bthhand"), /alias/);
    assert.doesNotMatch(await ip("-n", host.name, "addr", "show", "bthhand"), /inet /);
  },
});
