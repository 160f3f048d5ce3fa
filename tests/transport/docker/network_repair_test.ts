// Reconcile at start puts back the whole topology under running "containers" (namespaces the test
// makes, holding the endpoints' veth peers): bridge, address, MTU, every host veth's master and up
// state, each repair in the log. Proven by ping, through a real socket and real links.
import assert from "node:assert/strict";
import { join } from "node:path";
import { ip, netns, skipUnlessNet } from "../../helpers/netns.ts";
import { startInProcess } from "../../helpers/plugin_socket.ts";
import { tempDir } from "../../helpers/temp_dir.ts";

const ignore = skipUnlessNet(import.meta.url.split("/").pop()!);
const hex = (seed: string) => seed.repeat(64).slice(0, 64);
const NET = hex("d4");
const ENDPOINTS = [[hex("e5"), "198.18.9.2/24"], [hex("f6"), "198.18.9.3/24"]] as const;
const GATEWAY = "198.18.9.1";

type Link = { ifname: string; mtu: number; master?: string; flags: string[] };

async function link(ns: string, name: string): Promise<Link> {
  return JSON.parse(await ip("-n", ns, "-json", "link", "show", "dev", name))[0];
}

/** Pings `to` from namespace `ns` once; the output on failure. */
async function ping(ns: string, to: string): Promise<string | null> {
  const out = await new Deno.Command("ip", {
    args: ["netns", "exec", ns, "busybox", "ping", "-c", "1", "-W", "2", to],
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return out.success ? null : text;
}

async function logOf(stateDir: string): Promise<string> {
  return await Deno.readTextFile(join(stateDir, "log", "00000000000000000001.log"));
}

Deno.test({
  name: "reconcile puts running containers back on a lost bridge, and their ping works again",
  ignore,
  async fn() {
    await using dir = await tempDir();
    await using host = await netns("host");
    await using a = await netns("a");
    await using b = await netns("b");
    const sandboxes = [a.name, b.name];
    const veths: { host: string; peer: string }[] = [];
    let bridge = "";
    {
      await using berth = await startInProcess(dir.path, { netns: host.name });
      const call = async (method: string, body: unknown) => {
        const reply = await berth.call(method, body);
        assert.equal(reply.status, 200, `${method}: ${reply.text}`);
        return reply.body as Record<string, unknown>;
      };
      await call("NetworkDriver.CreateNetwork", {
        NetworkID: NET,
        Options: { "com.docker.network.generic": { mtu: "1400" } },
        IPv4Data: [{ AddressSpace: "BerthLocal", Pool: "198.18.9.0/24", Gateway: `${GATEWAY}/24` }],
        IPv6Data: [],
      });
      for (const [index, [id, address]] of ENDPOINTS.entries()) {
        await call("NetworkDriver.CreateEndpoint", {
          NetworkID: NET,
          EndpointID: id,
          Interface: { Address: address, AddressIPv6: "", MacAddress: "" },
        });
        const joined = await call("NetworkDriver.Join", {
          NetworkID: NET,
          EndpointID: id,
          SandboxKey: "",
        });
        const peer = (joined.InterfaceName as { SrcName: string }).SrcName;
        const sandbox = sandboxes[index]!;
        // What libnetwork does with SrcName: into the container's namespace, addressed, up.
        await ip("-n", host.name, "link", "set", peer, "netns", sandbox);
        await ip("-n", sandbox, "addr", "add", address, "dev", peer);
        await ip("-n", sandbox, "link", "set", peer, "up");
        veths.push({ host: `bthh${peer.slice(4)}`, peer });
      }
      bridge = (await link(host.name, veths[0]!.host)).master!;
      assert.equal(await ping(a.name, "198.18.9.3"), null);
    }

    // Berth is down; only the bridge is deleted (and one veth's MTU changed by hand).
    await ip("-n", host.name, "link", "del", bridge);
    await ip("-n", host.name, "link", "set", "dev", veths[1]!.host, "mtu", "1300");
    assert.notEqual(await ping(a.name, "198.18.9.3"), null, "the containers are cut off");
    {
      await using berth = await startInProcess(dir.path, { netns: host.name });
      for (const { host: name } of veths) {
        const shown = await link(host.name, name);
        assert.deepEqual([shown.master, shown.flags.includes("UP"), shown.mtu], [
          bridge,
          true,
          1400,
        ], name);
      }
      assert.equal(await ping(a.name, "198.18.9.3"), null);
      assert.equal(await ping(b.name, GATEWAY), null);
      const log = await logOf(berth.stateDir);
      assert.match(log, /"type":"network\.bridge\.lost"/);
      for (const [id] of ENDPOINTS) {
        assert.match(log, new RegExp(`"actor":"endpoint/${id}","type":"endpoint\\.veth\\.lost"`));
      }
      assert.deepEqual(berth.problems().filter((line) => !line.startsWith("reconciled")), []);
      // The log says what was wrong, e.g. that the veth was on no bridge.
      assert.ok(
        log.includes(
          `"reason":"veth ${veths[1]!.host} is on no bridge, not ${bridge}, at MTU 1300, not 1400"`,
        ),
      );
    }

    // The bridge is there but lost its address and is down: reconcile repairs that too.
    await ip("-n", host.name, "addr", "flush", "dev", bridge);
    await ip("-n", host.name, "link", "set", "dev", bridge, "down");
    {
      await using berth = await startInProcess(dir.path, { netns: host.name });
      assert.equal(await ping(a.name, GATEWAY), null);
      assert.ok(
        berth.errors.some((line) => /network\/d4d4.*network\.bridge\.lost/.test(line)),
        berth.errors.join("\n"),
      );
    }
  },
});
