// Real bridges and veth pairs, each test inside network namespaces of its own (`bthtest-<random>`),
// so the host netns is never touched; deleting a netns deletes every link left in it.
import assert from "node:assert/strict";
import {
  BERTH_LINK_PREFIX,
  bridgeName,
  createIpPlumbing,
  vethNames,
} from "../../src/backends/net_plumbing.ts";
import { BackendError } from "../../src/backends/volume_backend.ts";
import { raced, racingIp, skipUnlessNet } from "../helpers/netns.ts";
import { onPath } from "../helpers/skip.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const NETWORK_ID = "0123456789abcdef".repeat(4);
const ENDPOINT_IDS = ["a".repeat(64), "b".repeat(64)] as const;

function netTest(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  Deno.test({ name, ignore: skipUnlessNet(name), fn });
}

async function ip(...args: string[]): Promise<string> {
  const out = await new Deno.Command("ip", { args, stdin: "null" }).output();
  const stderr = new TextDecoder().decode(out.stderr).trim();
  assert.ok(out.success, `ip ${args.join(" ")} failed: ${stderr}`);
  return new TextDecoder().decode(out.stdout);
}

type JsonLink = { ifname: string; mtu: number; master?: string; link?: string; ifindex: number };

async function jsonLinks(...args: string[]): Promise<JsonLink[]> {
  return JSON.parse(await ip(...args, "-json", "link", "show"));
}

type Netns = { name: string } & AsyncDisposable;

async function netns(): Promise<Netns> {
  const name = `bthtest-${crypto.randomUUID().slice(0, 8)}`;
  await ip("netns", "add", name);
  return {
    name,
    async [Symbol.asyncDispose]() {
      await new Deno.Command("ip", { args: ["netns", "del", name], stdin: "null" }).output();
    },
  };
}

async function hostLinkNames(): Promise<string[]> {
  return (await jsonLinks()).map((link) => link.ifname).filter((name) => name.startsWith("bth"));
}

Deno.test("bridgeName and vethNames give 15-char bth names and refuse non-hex ids", () => {
  assert.equal(bridgeName(NETWORK_ID), "bthb0123456789a");
  assert.deepEqual(vethNames(ENDPOINT_IDS[0]), {
    host: "bthhaaaaaaaaaaa",
    peer: "bthcaaaaaaaaaaa",
  });
  for (const name of [bridgeName(NETWORK_ID), ...Object.values(vethNames(NETWORK_ID))]) {
    assert.ok(name.length <= 15, name);
    assert.ok(name.startsWith(BERTH_LINK_PREFIX), name);
  }
  for (const id of ["", "abc", "0123456789", "g".repeat(64), NETWORK_ID.toUpperCase(), "../x"]) {
    assert.throws(() => bridgeName(id), /not a lowercase hex id/);
    assert.throws(() => vethNames(id), /not a lowercase hex id/);
  }
  assert.throws(() => bridgeName(`${NETWORK_ID}0`), /not a lowercase hex id/);
});

netTest(
  "createBridge makes an addressed bridge, idempotently; deleteBridge removes it",
  async () => {
    await using a = await netns();
    const plumbing = createIpPlumbing({ netns: a.name });
    const name = bridgeName(NETWORK_ID);
    assert.equal(await plumbing.linkExists(name), false);
    for (let i = 0; i < 2; i++) {
      await plumbing.createBridge(name, { mtu: 1400, address: "198.18.200.1/24" });
    }
    assert.equal(await plumbing.linkExists(name), true);
    assert.deepEqual(await plumbing.listLinks(BERTH_LINK_PREFIX), [
      { name, kind: "bridge", master: null, up: true, owner: null },
    ]);
    const [info] = JSON.parse(await ip("-n", a.name, "-json", "addr", "show", "dev", name));
    assert.equal(info.mtu, 1400);
    const inet = info.addr_info.filter((addr: { family: string }) => addr.family === "inet");
    assert.deepEqual(
      inet.map((addr: { local: string; prefixlen: number }) => [addr.local, addr.prefixlen]),
      [
        ["198.18.200.1", 24],
      ],
    );
    await plumbing.createBridge(name, { mtu: 1450 });
    assert.equal((await jsonLinks("-n", a.name)).find((link) => link.ifname === name)?.mtu, 1450);

    await plumbing.deleteBridge(name);
    await plumbing.deleteBridge(name);
    assert.equal(await plumbing.linkExists(name), false);
    assert.deepEqual(await plumbing.listLinks(BERTH_LINK_PREFIX), []);
  },
);

netTest("createVeth connects two endpoints through a bridge; deletes leave nothing", async () => {
  const hostBefore = await hostLinkNames();
  {
    await using a = await netns();
    await using b = await netns();
    await using c = await netns();
    const plumbing = createIpPlumbing({ netns: a.name });
    const bridge = bridgeName(NETWORK_ID);
    await plumbing.createBridge(bridge, { mtu: 1400, address: "198.18.200.1/24" });
    const pairs = ENDPOINT_IDS.map((id) => vethNames(id));
    const sandboxes = [[b.name, "198.18.200.2/24"], [c.name, "198.18.200.3/24"]] as const;
    for (const [i, { host, peer }] of pairs.entries()) {
      await plumbing.createVeth(host, peer, { bridge, mtu: 1400 });
      const [sandbox, address] = sandboxes[i]!;
      // What libnetwork does after Join: move SrcName into the container's netns and configure it.
      await ip("-n", a.name, "link", "set", "dev", peer, "netns", sandbox);
      await ip("-n", sandbox, "addr", "add", address, "dev", peer);
      await ip("-n", sandbox, "link", "set", "dev", peer, "up");
      await ip("-n", sandbox, "link", "set", "dev", "lo", "up");
    }
    const links = await plumbing.listLinks(BERTH_LINK_PREFIX);
    for (const { host } of pairs) {
      assert.deepEqual(links.find((link) => link.name === host), {
        name: host,
        kind: "veth",
        master: bridge,
        up: true,
        owner: null,
      });
    }
    // .ci/run installs busybox-static, not iputils-ping; both pings take -c and -W.
    const ping = onPath("ping") ? ["ping"] : ["busybox", "ping"];
    await ip("netns", "exec", b.name, ...ping, "-c", "1", "-W", "2", "198.18.200.3");

    for (const { host } of pairs) await plumbing.deleteVeth(host);
    await plumbing.deleteBridge(bridge);
    assert.deepEqual((await jsonLinks("-n", a.name)).map((link) => link.ifname), ["lo"]);
    assert.deepEqual((await jsonLinks("-n", b.name)).map((link) => link.ifname), ["lo"]);
  }
  assert.deepEqual(await hostLinkNames(), hostBefore);
});

netTest("createVeth is idempotent and repairs a half-made pair", async () => {
  await using a = await netns();
  await using b = await netns();
  const plumbing = createIpPlumbing({ netns: a.name });
  const bridge = bridgeName(NETWORK_ID);
  const { host, peer } = vethNames(ENDPOINT_IDS[0]);
  const link = async (name: string) =>
    (await jsonLinks("-n", a.name)).find((link) => link.ifname === name);
  const expectPair = async (mtu: number) => {
    const [h, p] = [await link(host), await link(peer)];
    assert.equal(h?.master, bridge);
    assert.equal(h?.link, peer);
    assert.deepEqual([h?.mtu, p?.mtu], [mtu, mtu]);
    return h!.ifindex;
  };
  await plumbing.createBridge(bridge, {});

  await plumbing.createVeth(host, peer, { bridge, mtu: 1400 });
  const first = await expectPair(1400);
  await plumbing.createVeth(host, peer, { bridge, mtu: 1400 });
  assert.equal(await expectPair(1400), first, "a whole pair is left as it is");

  await ip("-n", a.name, "link", "set", "dev", host, "nomaster", "down");
  await plumbing.createVeth(host, peer, { bridge, mtu: 1300 });
  assert.equal(await expectPair(1300), first, "enslaved again and resized in place");
  assert.deepEqual((await plumbing.listLinks(host))[0]?.up, true);

  await plumbing.deleteVeth(host);
  await ip("-n", a.name, "link", "add", "bthhstale", "type", "veth", "peer", "name", peer);
  await plumbing.createVeth(host, peer, { bridge });
  await expectPair(1500);
  assert.equal(await plumbing.linkExists("bthhstale"), false, "the stale pair is gone");

  await plumbing.deleteVeth(host);
  await ip("-n", a.name, "link", "add", host, "type", "veth", "peer", "name", "bthcstale");
  await plumbing.createVeth(host, peer, { bridge });
  await expectPair(1500);
  assert.equal(await plumbing.linkExists("bthcstale"), false);

  // Between Join and Leave the peer lives in the container: the pair is whole, leave it there.
  await ip("-n", a.name, "link", "set", "dev", peer, "netns", b.name);
  const moved = (await link(host))?.ifindex;
  await plumbing.createVeth(host, peer, { bridge });
  assert.equal((await link(host))?.ifindex, moved);
  assert.deepEqual((await jsonLinks("-n", b.name)).map((link) => link.ifname), ["lo", peer]);
  await plumbing.deleteVeth(host);
  await plumbing.deleteVeth(host);
  assert.deepEqual((await jsonLinks("-n", b.name)).map((link) => link.ifname), ["lo"]);
});

netTest("netPlumbing throws BackendError with ip's stderr when a command fails", async () => {
  await using a = await netns();
  const plumbing = createIpPlumbing({ netns: a.name });
  const { host, peer } = vethNames(ENDPOINT_IDS[0]);
  const missing = bridgeName(NETWORK_ID);
  await assert.rejects(plumbing.createVeth(host, peer, { bridge: missing }), (error) => {
    assert.ok(error instanceof BackendError);
    assert.match(error.message, new RegExp(`^ip -n ${a.name} link add name ${host} master`));
    assert.match(
      error.message,
      /: Error: argument "bthb0123456789a" is wrong: Device does not exist$/,
    );
    return true;
  });
  assert.deepEqual(await plumbing.listLinks(BERTH_LINK_PREFIX), [], "no half pair left behind");

  await plumbing.createBridge(missing, {});
  await plumbing.createVeth(host, peer, { bridge: missing });
  await assert.rejects(plumbing.createBridge(host, {}), /a veth link has that name/);
  await assert.rejects(plumbing.deleteBridge("lo"), BackendError);
  assert.equal(await plumbing.linkExists("lo"), true);
  await assert.rejects(
    createIpPlumbing({ netns: `${a.name}-gone` }).linkExists("lo"),
    /Cannot open network namespace/,
  );
  await assert.rejects(
    createIpPlumbing({ ip: "/nonexistent/ip" }).linkExists("lo"),
    /^BackendError: \/nonexistent\/ip -json -details link show dev lo: NotFound/,
  );
});

netTest(
  "netPlumbing takes a link that vanishes in the middle of an ip call as missing",
  async (t) => {
    const bridge = bridgeName(NETWORK_ID);
    const { host, peer } = vethNames(ENDPOINT_IDS[0]);
    // One namespace and one racing `ip` per case: the race happens once, then ip is itself again.
    async function racing(during: string, vanish: string) {
      const ns = await netns();
      const dir = await tempDir();
      const ip = await racingIp(dir.path, { during, vanish, ns: ns.name });
      return {
        plumbing: createIpPlumbing({ netns: ns.name, ip }),
        real: createIpPlumbing({ netns: ns.name }),
        raced: () => raced(dir.path),
        async [Symbol.asyncDispose]() {
          await ns[Symbol.asyncDispose]();
          await dir[Symbol.asyncDispose]();
        },
      };
    }
    await t.step("linkExists answers false", async () => {
      await using r = await racing(`show dev ${bridge}`, bridge);
      await r.real.createBridge(bridge, {});
      assert.equal(await r.plumbing.linkExists(bridge), false);
      assert.ok(await r.raced());
    });
    await t.step("deleteBridge and deleteVeth are done", async () => {
      await using r = await racing(`del dev ${bridge}`, bridge);
      await r.real.createBridge(bridge, {});
      await r.plumbing.deleteBridge(bridge);
      assert.ok(await r.raced());
      await using v = await racing(`del dev ${host}`, host);
      await v.real.createBridge(bridge, {});
      await v.real.createVeth(host, peer, { bridge });
      await v.plumbing.deleteVeth(host);
      assert.ok(await v.raced());
      assert.equal(await v.real.linkExists(host), false);
    });
    await t.step("createBridge starts over and leaves the bridge addressed and up", async () => {
      await using r = await racing("addr replace", bridge);
      await r.plumbing.createBridge(bridge, { address: "198.18.200.1/24" });
      assert.ok(await r.raced());
      const [link] = await r.real.listLinks(bridge);
      assert.equal(link?.up, true);
    });
    await t.step("createVeth starts over and leaves the pair on its bridge", async () => {
      await using r = await racing(`set dev ${host}`, host);
      await r.real.createBridge(bridge, {});
      await r.real.createVeth(host, peer, { bridge });
      await r.real.createBridge("bthbother", {});
      await r.plumbing.createVeth(host, peer, { bridge: "bthbother" });
      assert.ok(await r.raced());
      const [link] = await r.real.listLinks(host);
      assert.deepEqual([link?.master, link?.up], ["bthbother", true]);
    });
  },
);

netTest("with an owner, netPlumbing uses and deletes only the links that owner made", async () => {
  await using a = await netns();
  const plumbing = createIpPlumbing({ netns: a.name, owner: "berth:/ours" });
  await ip("-n", a.name, "link", "add", "bthbtheirs", "type", "bridge");
  await ip("-n", a.name, "link", "set", "dev", "bthbtheirs", "alias", "berth:/theirs");
  await ip("-n", a.name, "link", "add", "bthbhand", "type", "bridge");
  await ip("-n", a.name, "link", "add", "bthhtheirs", "type", "veth", "peer", "name", "bthctheirs");
  await ip("-n", a.name, "link", "set", "dev", "bthhtheirs", "alias", "berth:/theirs");
  await assert.rejects(plumbing.createBridge("bthbtheirs", {}), /belongs to berth:\/theirs/);
  await assert.rejects(plumbing.createBridge("bthbhand", {}), /not Berth's/);
  await plumbing.createBridge("bthbours", { address: "198.18.201.1/24" });
  await assert.rejects(
    plumbing.createVeth("bthhtheirs", "bthctheirs", { bridge: "bthbours" }),
    /veth "bthhtheirs": it belongs to berth:\/theirs/,
  );
  for (const name of ["bthbtheirs", "bthbhand"]) await plumbing.deleteBridge(name);
  await plumbing.deleteVeth("bthhtheirs");
  const left = async () => (await jsonLinks("-n", a.name)).map((link) => link.ifname).sort();
  assert.deepEqual(await left(), [
    "bthbhand",
    "bthbours",
    "bthbtheirs",
    "bthctheirs",
    "bthhtheirs",
    "lo",
  ]);
  assert.deepEqual((await plumbing.listLinks("bthbours"))[0]?.owner, "berth:/ours");
  await plumbing.deleteBridge("bthbours");
  // A crash between making a bridge and tagging it leaves it untagged: reconcile may ask.
  await plumbing.deleteBridge("bthbhand", { orUntagged: true });
  await plumbing.deleteBridge("bthbtheirs", { orUntagged: true });
  assert.deepEqual(await left(), ["bthbtheirs", "bthctheirs", "bthhtheirs", "lo"]);
});
