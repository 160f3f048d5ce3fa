// What an attacker can send on the plugin socket: keys named like JavaScript's own properties,
// bodies too big to parse, more options than anyone needs, replies that would echo it all back.
import assert from "node:assert/strict";
import { startInProcess } from "../../helpers/plugin_socket.ts";
import { tempDir } from "../../helpers/temp_dir.ts";

type Body = Record<string, unknown>;

/** Every name an object answers to without owning it, and some that look like them. */
function propertyNames(): string[] {
  const names = new Set(Object.getOwnPropertyNames(Object.prototype));
  for (const name of Object.getOwnPropertyNames(Function.prototype)) names.add(name);
  for (const name of ["__proto__", "prototype", "then", "valueOf", "length", "0", "-1"]) {
    names.add(name);
  }
  return [...names];
}

/** A seeded generator of printable strings, so a failure is the same on every run. */
function randomIds(seed: number, count: number): string[] {
  let state = seed;
  const next = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
  return Array.from({ length: count }, () => {
    const length = 1 + Math.floor(next() * 40);
    return Array.from({ length }, () => String.fromCharCode(33 + Math.floor(next() * 94)))
      .join("");
  });
}

Deno.test("mount IDs named like Object.prototype properties count like any other", async () => {
  await using dir = await tempDir();
  await using berth = await startInProcess(dir.path);
  const call = async (method: string, body: Body) => {
    // Built as JSON text: an object literal with a __proto__ key would set the prototype.
    const text = JSON.stringify(body).replace('"ID_":', '"ID":');
    return await berth.call(`VolumeDriver.${method}`, text);
  };
  const mounts = async () => {
    const reply = await berth.call("VolumeDriver.Get", { Name: "vol" });
    return (reply.body as { Volume: { Status: { mounts: number } } }).Volume.Status.mounts;
  };
  assert.equal((await call("Create", { Name: "vol" })).status, 200);
  const ids = [...new Set([...propertyNames(), ...randomIds(20261128, 200)])];
  let held = 0;
  for (const id of ids) {
    for (let time = 0; time < 2; time++) {
      const reply = await call("Mount", { Name: "vol", ID: id });
      assert.equal(reply.status, 200, `Mount ${JSON.stringify(id)}: ${reply.text}`);
      held++;
    }
    assert.equal(await mounts(), held, `after mounting ${JSON.stringify(id)} twice`);
    const refused = await call("Remove", { Name: "vol" });
    assert.equal(refused.status, 500, `Remove while ${JSON.stringify(id)} holds the volume`);
  }
  for (const id of ids) {
    for (let time = 0; time < 2; time++) {
      const reply = await call("Unmount", { Name: "vol", ID: id });
      assert.equal(reply.status, 200, `Unmount ${JSON.stringify(id)}: ${reply.text}`);
      held--;
    }
    const extra = await call("Unmount", { Name: "vol", ID: id });
    assert.equal(extra.status, 500, `a third Unmount of ${JSON.stringify(id)} is refused`);
  }
  assert.equal(await mounts(), 0);
  assert.equal((await call("Remove", { Name: "vol" })).status, 200);
});

Deno.test("an option named __proto__ or constructor is refused by name, never dropped", async () => {
  await using dir = await tempDir();
  await using berth = await startInProcess(dir.path);
  for (const key of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
    const text = `{"Name":"vol","Opts":{"${key}":"0700"}}`;
    const reply = await berth.call("VolumeDriver.Create", text);
    assert.notEqual(reply.status, 200, `${key}: ${reply.text}`);
    assert.match(String((reply.body as Body).Err), new RegExp(`unknown option "${key}"`));
    const get = await berth.call("VolumeDriver.Get", { Name: "vol" });
    assert.notEqual(get.status, 200, `no volume was made with option ${key}`);
  }
});

Deno.test("IPAM refuses a pool option named __proto__ by name, never drops it", async () => {
  await using dir = await tempDir();
  await using berth = await startInProcess(dir.path);
  const text = '{"Pool":"198.18.9.0/24","Options":{"__proto__":"x"}}';
  const reply = await berth.call("IpamDriver.RequestPool", text);
  assert.equal(reply.status, 400, reply.text);
  assert.match(String((reply.body as Body).Error), /unknown IPAM option "__proto__"/);
  await assert.rejects(berth.berth.engine.read("pool/198.18.9.0/24"), /not found/);
});

const MIB = 1024 * 1024;

Deno.test("a body over 1 MiB is refused with 413 before it is parsed", async (t) => {
  await using dir = await tempDir();
  await using berth = await startInProcess(dir.path);
  await t.step("a 2 MiB body of keys gets a JSON Err, fast", async () => {
    const keys = Array.from({ length: 200_000 }, (_, i) => `"k${i}":"v"`).join(",");
    const text = `{"Name":"vol","Opts":{${keys}}}`;
    assert.ok(text.length > 2 * MIB);
    const reply = await berth.call("VolumeDriver.Create", text);
    assert.equal(reply.status, 413, reply.text.slice(0, 200));
    assert.match(String((reply.body as Body).Err), /larger than 1048576 bytes/);
  });
  await t.step("IPAM's refusal is in Error too", async () => {
    const reply = await berth.call("IpamDriver.RequestPool", " ".repeat(MIB + 1));
    assert.equal(reply.status, 413);
    assert.match(String((reply.body as Body).Error), /larger than/);
  });
  await t.step("a chunked body without a length is cut off once past the limit", async () => {
    using conn = await Deno.connect({ transport: "unix", path: berth.socket });
    const head = "POST /VolumeDriver.Create HTTP/1.1\r\nHost: plugin\r\n" +
      "Transfer-Encoding: chunked\r\n\r\n";
    await conn.write(new TextEncoder().encode(head));
    const chunk = new TextEncoder().encode(`10000\r\n${" ".repeat(0x10000)}\r\n`);
    const reply = new Uint8Array(4096);
    const read = conn.read(reply);
    try {
      for (let sent = 0; sent < 4 * MIB; sent += 0x10000) {
        for (let done = 0; done < chunk.length;) done += await conn.write(chunk.subarray(done));
      }
    } catch {
      // Berth closed the connection after its reply: what it should do
    }
    const count = await read;
    const text = new TextDecoder().decode(reply.subarray(0, count ?? 0));
    assert.match(text, /^HTTP\/1.1 413/);
    assert.match(text, /larger than 1048576 bytes/);
  });
  await t.step("the socket still answers", async () => {
    const reply = await berth.call("VolumeDriver.Create", { Name: "after" });
    assert.equal(reply.status, 200, reply.text);
  });
});

Deno.test("more options than anyone needs are refused by count, not listed", async () => {
  await using dir = await tempDir();
  await using berth = await startInProcess(dir.path);
  const opts = Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [`bad${i}`, "v"]));
  const reply = await berth.call("VolumeDriver.Create", { Name: "vol", Opts: opts });
  assert.equal(reply.status, 400, reply.text.slice(0, 200));
  assert.match(String((reply.body as Body).Err), /Opts: 5000 entries; at most 128/);
  assert.ok(reply.text.length < 1000, `reply of ${reply.text.length} bytes`);
});

Deno.test("an error reply names a few bad fields and says how many more", async () => {
  await using dir = await tempDir();
  await using berth = await startInProcess(dir.path);
  const numbers = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, i]));
  const retyped = await berth.call("VolumeDriver.Create", { Name: "vol", Opts: numbers });
  assert.equal(retyped.status, 400);
  assert.match(String((retyped.body as Body).Err), /Opts\.k0: Invalid input: expected string/);
  assert.ok(retyped.text.length < 1000, `reply of ${retyped.text.length} bytes`);
  const strings = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, "v"]));
  const unknown = await berth.call("VolumeDriver.Create", { Name: "vol", Opts: strings });
  assert.match(String((unknown.body as Body).Err), /unknown options "k0", "k1", "k2" and 97 more/);
  const longName = "x".repeat(100_000);
  const long = await berth.call("VolumeDriver.Create", { Name: "vol", Opts: { [longName]: "" } });
  assert.ok(long.text.length < 1000, `reply of ${long.text.length} bytes`);
  const path = await berth.call(`VolumeDriver.${"y".repeat(10_000)}`, {});
  assert.equal(path.status, 404);
  assert.ok(path.text.length < 1000, `404 reply of ${path.text.length} bytes`);
});

Deno.test("a volume name of any length the protocol accepts lives its whole life", async () => {
  await using dir = await tempDir();
  await using berth = await startInProcess(dir.path);
  for (const length of [2, 210, 211, 218, 219, 254, 255]) {
    const Name = "L".repeat(length);
    for (const [method, body] of [["Create", { Name }], ["Mount", { Name, ID: "m" }]] as const) {
      const reply = await berth.call(`VolumeDriver.${method}`, body);
      assert.equal(reply.status, 200, `${method} of a ${length}-character name: ${reply.text}`);
    }
    for (const [method, body] of [["Unmount", { Name, ID: "m" }], ["Remove", { Name }]] as const) {
      const reply = await berth.call(`VolumeDriver.${method}`, body);
      assert.equal(reply.status, 200, `${method} of a ${length}-character name: ${reply.text}`);
    }
  }
  const list = await berth.call("VolumeDriver.List", {});
  assert.deepEqual(list.body, { Volumes: [] });
  const tooLong = await berth.call("VolumeDriver.Create", { Name: "L".repeat(256) });
  assert.equal(tooLong.status, 400);
});

Deno.test("network options named __proto__, or too many of them, are refused by name", async () => {
  await using dir = await tempDir();
  await using berth = await startInProcess(dir.path);
  const create = (generic: string) =>
    berth.call(
      "NetworkDriver.CreateNetwork",
      `{"NetworkID":"${"ab".repeat(32)}","Options":{"com.docker.network.generic":${generic}},` +
        `"IPv4Data":[{"Pool":"198.18.9.0/24","Gateway":"198.18.9.1/24"}]}`,
    );
  const proto = await create('{"__proto__":"x"}');
  assert.equal(proto.status, 400, proto.text);
  assert.match(String((proto.body as Body).Err), /unknown option "__proto__"/);
  const many = await create(
    JSON.stringify(Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, "v"]))),
  );
  assert.equal(many.status, 400, many.text);
  assert.match(String((many.body as Body).Err), /200 entries; at most 128/);
});
