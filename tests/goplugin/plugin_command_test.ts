// `berth plugin` as a real child process, driven the way a go-plugin host drives it: environment
// in, one handshake line out, gRPC over the socket it names, Shutdown. (The Go host in this folder
// does the same with the real go-plugin library.)
import assert from "node:assert/strict";
import { join } from "node:path";
import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import * as ipam from "../../src/transport/goplugin/gen/berth/v1/ipam_pb.ts";
import * as pb from "../../src/transport/goplugin/gen/berth/v1/volume_pb.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { bytes, call, COOKIE, endChild, firstLine, launch, raw, unary } from "./_plugin_child.ts";

Deno.test("berth plugin: handshake line, health, held streams, Shutdown exits 0", async () => {
  await using dir = await tempDir();
  const child = launch(dir.path, { ...COOKIE, PLUGIN_PROTOCOL_VERSIONS: "3,1,2" });
  const stderr = new Response(child.stderr).text();
  const { line, rest } = await firstLine(child.stdout);
  const match = /^1\|1\|unix\|(.+\/plugin\d+)\|grpc\|$/.exec(line);
  assert.ok(match, `handshake line: ${JSON.stringify(line)}`);
  const socket = match[1]!;
  assert.equal(join(socket, ".."), dir.path, "in PLUGIN_UNIX_SOCKET_DIR");
  const client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
  try {
    const plugin = new TextEncoder().encode("plugin");
    const check = new Uint8Array([0x0a, plugin.length, ...plugin]);
    assert.deepEqual([...await unary(client, "/grpc.health.v1.Health/Check", check)], [0x08, 1]);
    await assert.rejects(
      unary(client, "/grpc.health.v1.Health/Check", new Uint8Array([0x0a, 1, 0x78])),
      (error: grpc.ServiceError) => error.code === grpc.status.NOT_FOUND,
    );
    // The host opens StreamStdio right away; it stays open and silent until the end.
    const stdio = client.makeServerStreamRequest(
      "/plugin.GRPCStdio/StreamStdio",
      raw,
      bytes,
      new Uint8Array(0),
    );
    const stdioData: Uint8Array[] = [];
    stdio.on("data", (chunk: Uint8Array) => stdioData.push(chunk));
    const stdioEnded = new Promise<void>((resolve) => {
      stdio.on("end", resolve);
      stdio.on("error", () => resolve());
    });
    const started = Date.now();
    assert.deepEqual(
      await unary(client, "/plugin.GRPCController/Shutdown", new Uint8Array(0)),
      new Uint8Array(0),
    );
    await stdioEnded;
    const status = await child.status;
    assert.equal(status.code, 0, await stderr);
    assert.ok(Date.now() - started < 2000, "within go-plugin's 2 s grace");
    assert.deepEqual(stdioData, []);
    assert.equal(await rest, "", "nothing on stdout after the handshake");
    await assert.rejects(Deno.lstat(socket), Deno.errors.NotFound, "the socket is removed");
    for (const entry of (await stderr).trim().split("\n")) {
      const parsed = JSON.parse(entry);
      assert.match(parsed["@level"], /^(info|warn)$/, entry);
      assert.match(parsed["@timestamp"], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, entry);
    }
  } finally {
    await endChild(child, client);
  }
});

Deno.test("berth plugin refuses to start without the cookie or a common version", async () => {
  await using dir = await tempDir();
  const cases: [Record<string, string>, RegExp][] = [
    [{ PLUGIN_PROTOCOL_VERSIONS: "1" }, /^\[ERROR\] berth: .*go-plugin host.*berth serve/],
    [{ ...COOKIE, PLUGIN_PROTOCOL_VERSIONS: "4,5" }, /"@level":"error".*versions 4, 5/],
  ];
  for (const [env, expected] of cases) {
    const output = await launch(dir.path, env).output();
    assert.equal(output.code, 1);
    assert.equal(output.stdout.length, 0, "nothing on stdout");
    assert.match(new TextDecoder().decode(output.stderr), expected);
  }
});

Deno.test("berth plugin serves VolumeDriver over gRPC, and its state survives SIGKILL", async () => {
  await using dir = await tempDir();
  const start = async () => {
    const child = launch(dir.path, { ...COOKIE, PLUGIN_PROTOCOL_VERSIONS: "1" });
    const { line } = await firstLine(child.stdout);
    const socket = /^1\|1\|unix\|(.+)\|grpc\|$/.exec(line)![1]!;
    return {
      child,
      client: new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure()),
    };
  };
  let { child, client } = await start();
  try {
    const volume = (name: string) =>
      call(client, "berth.v1.VolumeDriver/Get", pb.VolumeNameSchema, pb.VolumeSchema, { name });
    await call(
      client,
      "berth.v1.VolumeDriver/Create",
      pb.CreateVolumeRequestSchema,
      pb.CreateVolumeResponseSchema,
      {
        name: "grpc-vol",
        options: { mode: "0700" },
      },
    );
    const mounted = await call(
      client,
      "berth.v1.VolumeDriver/Mount",
      pb.MountRequestSchema,
      pb.MountResponseSchema,
      {
        name: "grpc-vol",
        id: "c1",
      },
    );
    assert.equal(mounted.mountpoint, join(dir.path, "state", "volumes", "grpc-vol", "_data"));
    assert.equal((await volume("grpc-vol")).mounts, 1);
    const refused = (code: grpc.status, message: RegExp) => (error: grpc.ServiceError) =>
      error.code === code && message.test(error.details);
    await assert.rejects(
      call(
        client,
        "berth.v1.VolumeDriver/Remove",
        pb.VolumeNameSchema,
        pb.RemoveVolumeResponseSchema,
        {
          name: "grpc-vol",
        },
      ),
      refused(grpc.status.FAILED_PRECONDITION, /in use by 1 mount/),
    );
    await assert.rejects(volume("nope-vol"), refused(grpc.status.NOT_FOUND, /not found/));
    await assert.rejects(
      unary(client, "/berth.v1.VolumeDriver/Create", new Uint8Array([0xff, 0xff, 0xff, 0x01])),
      refused(grpc.status.INVALID_ARGUMENT, /not a berth\.v1\.CreateVolumeRequest/),
    );
    await assert.rejects(
      call(client, "berth.v1.VolumeDriver/Mount", pb.MountRequestSchema, pb.MountResponseSchema, {
        name: "grpc-vol",
        id: "x".repeat(300),
      }),
      refused(grpc.status.INVALID_ARGUMENT, /ID must be at most 256 characters/),
    );
    await assert.rejects(
      call(
        client,
        "berth.v1.VolumeDriver/Create",
        pb.CreateVolumeRequestSchema,
        pb.CreateVolumeResponseSchema,
        {
          name: "../etc",
        },
      ),
      refused(grpc.status.INVALID_ARGUMENT, /Name must match/),
    );

    // SIGKILL, relaunch on the same state dir: the volume and its mount are where they were.
    client.close();
    child.kill("SIGKILL");
    await child.status;
    await child.stderr.cancel();
    ({ child, client } = await start());
    const after = await volume("grpc-vol");
    assert.equal(after.mounts, 1);
    assert.equal(after.state, "mounted");
    await call(
      client,
      "berth.v1.VolumeDriver/Unmount",
      pb.MountRequestSchema,
      pb.UnmountResponseSchema,
      {
        name: "grpc-vol",
        id: "c1",
      },
    );
    await call(
      client,
      "berth.v1.VolumeDriver/Remove",
      pb.VolumeNameSchema,
      pb.RemoveVolumeResponseSchema,
      {
        name: "grpc-vol",
      },
    );
    const list = await call(
      client,
      "berth.v1.VolumeDriver/List",
      pb.ListVolumesRequestSchema,
      pb.ListVolumesResponseSchema,
      {},
    );
    assert.deepEqual(list.volumes, []);
    await unary(client, "/plugin.GRPCController/Shutdown", new Uint8Array(0));
    assert.equal((await child.status).code, 0);
  } finally {
    await endChild(child, client);
  }
});

Deno.test("berth plugin serves IpamDriver over gRPC with the Docker socket's rules", async () => {
  await using dir = await tempDir();
  const child = launch(dir.path, { ...COOKIE, PLUGIN_PROTOCOL_VERSIONS: "1" });
  const { line } = await firstLine(child.stdout);
  const socket = /^1\|1\|unix\|(.+)\|grpc\|$/.exec(line)![1]!;
  const client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
  try {
    const ipamCall = <I extends DescMessage, O extends DescMessage>(
      name: string,
      input: I,
      output: O,
      request: MessageInitShape<I>,
    ) => call(client, `berth.v1.IpamDriver/${name}`, input, output, request);
    const given = await ipamCall(
      "RequestPool",
      ipam.RequestPoolRequestSchema,
      ipam.RequestPoolResponseSchema,
      {
        pool: "198.18.40.0/24",
      },
    );
    assert.equal(given.poolId, "198.18.40.0/24");
    const address = (gateway: boolean) =>
      ipamCall(
        "RequestAddress",
        ipam.RequestAddressRequestSchema,
        ipam.RequestAddressResponseSchema,
        {
          poolId: given.poolId,
          gateway,
        },
      );
    assert.equal((await address(true)).address, "198.18.40.1/24");
    assert.equal((await address(false)).address, "198.18.40.2/24");
    await assert.rejects(
      ipamCall("RequestPool", ipam.RequestPoolRequestSchema, ipam.RequestPoolResponseSchema, {
        pool: "198.18.41.0/24",
        options: JSON.parse(`{"__proto__":"x"}`),
      }),
      (error: grpc.ServiceError) => error.code === grpc.status.INVALID_ARGUMENT,
    );
    await assert.rejects(
      ipamCall(
        "RequestAddress",
        ipam.RequestAddressRequestSchema,
        ipam.RequestAddressResponseSchema,
        {
          poolId: "198.18.99.0/24",
        },
      ),
      (error: grpc.ServiceError) =>
        error.code === grpc.status.NOT_FOUND && /not found/.test(error.details),
    );
    await ipamCall(
      "ReleaseAddress",
      ipam.ReleaseAddressRequestSchema,
      ipam.ReleaseAddressResponseSchema,
      {
        poolId: given.poolId,
        address: "198.18.40.2",
      },
    );
    assert.equal((await address(false)).address, "198.18.40.2/24", "released, handed out again");
    await ipamCall("ReleasePool", ipam.ReleasePoolRequestSchema, ipam.ReleasePoolResponseSchema, {
      poolId: given.poolId,
    });
    await unary(client, "/plugin.GRPCController/Shutdown", new Uint8Array(0));
    assert.equal((await child.status).code, 0);
  } finally {
    await endChild(child, client);
  }
});
