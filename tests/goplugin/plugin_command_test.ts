// `berth plugin` as a real child process, driven the way a go-plugin host drives it: environment
// in, one handshake line out, gRPC over the socket it names, Shutdown. (The Go host in this folder
// does the same with the real go-plugin library.)
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import {
  create,
  type DescMessage,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import * as ipam from "../../src/transport/goplugin/gen/berth/v1/ipam_pb.ts";
import * as pb from "../../src/transport/goplugin/gen/berth/v1/volume_pb.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const COOKIE = { BERTH_PLUGIN: "berth-driver-engine" };

function launch(dir: string, env: Record<string, string>) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "plugin", "--state-dir", join(dir, "state")],
    env: { PLUGIN_UNIX_SOCKET_DIR: dir, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** The first line of `stream`, and a promise of everything after it. */
async function firstLine(stream: ReadableStream<Uint8Array>) {
  const reader = stream.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  const rest = (async () => {
    let after = text.slice(text.indexOf("\n") + 1);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return after;
      after += new TextDecoder().decode(value);
    }
  })();
  return { line: text.split("\n")[0]!, rest };
}

const raw = (value: Uint8Array) => Buffer.from(value);
const bytes = (value: Buffer) => new Uint8Array(value);

function unary(client: grpc.Client, path: string, request: Uint8Array) {
  return new Promise<Uint8Array>((resolve, reject) =>
    client.makeUnaryRequest(path, raw, bytes, request, (error, reply) => {
      if (error) reject(error);
      else resolve(reply!);
    })
  );
}

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
    client.close();
    try {
      child.kill("SIGKILL");
    } catch {
      // exited already
    }
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

/** A typed unary call of berth.v1.VolumeDriver. */
function volumeCall<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  name: string,
  input: I,
  output: O,
  request: MessageInitShape<I>,
): Promise<MessageShape<O>> {
  return unary(client, `/berth.v1.VolumeDriver/${name}`, toBinary(input, create(input, request)))
    .then((reply) => fromBinary(output, reply));
}

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
      volumeCall(client, "Get", pb.VolumeNameSchema, pb.VolumeSchema, { name });
    await volumeCall(
      client,
      "Create",
      pb.CreateVolumeRequestSchema,
      pb.CreateVolumeResponseSchema,
      {
        name: "grpc-vol",
        options: { mode: "0700" },
      },
    );
    const mounted = await volumeCall(
      client,
      "Mount",
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
      volumeCall(client, "Remove", pb.VolumeNameSchema, pb.RemoveVolumeResponseSchema, {
        name: "grpc-vol",
      }),
      refused(grpc.status.FAILED_PRECONDITION, /in use by 1 mount/),
    );
    await assert.rejects(volume("nope-vol"), refused(grpc.status.NOT_FOUND, /not found/));
    await assert.rejects(
      volumeCall(client, "Create", pb.CreateVolumeRequestSchema, pb.CreateVolumeResponseSchema, {
        name: "../etc",
      }),
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
    await volumeCall(client, "Unmount", pb.MountRequestSchema, pb.UnmountResponseSchema, {
      name: "grpc-vol",
      id: "c1",
    });
    await volumeCall(client, "Remove", pb.VolumeNameSchema, pb.RemoveVolumeResponseSchema, {
      name: "grpc-vol",
    });
    const list = await volumeCall(
      client,
      "List",
      pb.ListVolumesRequestSchema,
      pb.ListVolumesResponseSchema,
      {},
    );
    assert.deepEqual(list.volumes, []);
    await unary(client, "/plugin.GRPCController/Shutdown", new Uint8Array(0));
    assert.equal((await child.status).code, 0);
  } finally {
    client.close();
    try {
      child.kill("SIGKILL");
    } catch {
      // exited already
    }
    await child.stderr.cancel().catch(() => {});
  }
});

Deno.test("berth plugin serves IpamDriver over gRPC with the Docker socket's rules", async () => {
  await using dir = await tempDir();
  const child = launch(dir.path, { ...COOKIE, PLUGIN_PROTOCOL_VERSIONS: "1" });
  const { line } = await firstLine(child.stdout);
  const socket = /^1\|1\|unix\|(.+)\|grpc\|$/.exec(line)![1]!;
  const client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
  try {
    const call = <I extends DescMessage, O extends DescMessage>(
      name: string,
      input: I,
      output: O,
      request: MessageInitShape<I>,
    ) =>
      unary(client, `/berth.v1.IpamDriver/${name}`, toBinary(input, create(input, request)))
        .then((reply) => fromBinary(output, reply));
    const given = await call(
      "RequestPool",
      ipam.RequestPoolRequestSchema,
      ipam.RequestPoolResponseSchema,
      {
        pool: "198.18.40.0/24",
      },
    );
    assert.equal(given.poolId, "198.18.40.0/24");
    const address = (gateway: boolean) =>
      call("RequestAddress", ipam.RequestAddressRequestSchema, ipam.RequestAddressResponseSchema, {
        poolId: given.poolId,
        gateway,
      });
    assert.equal((await address(true)).address, "198.18.40.1/24");
    assert.equal((await address(false)).address, "198.18.40.2/24");
    await assert.rejects(
      call("RequestPool", ipam.RequestPoolRequestSchema, ipam.RequestPoolResponseSchema, {
        pool: "198.18.41.0/24",
        options: JSON.parse(`{"__proto__":"x"}`),
      }),
      (error: grpc.ServiceError) => error.code === grpc.status.INVALID_ARGUMENT,
    );
    await assert.rejects(
      call("RequestAddress", ipam.RequestAddressRequestSchema, ipam.RequestAddressResponseSchema, {
        poolId: "198.18.99.0/24",
      }),
      (error: grpc.ServiceError) =>
        error.code === grpc.status.NOT_FOUND && /not found/.test(error.details),
    );
    await call(
      "ReleaseAddress",
      ipam.ReleaseAddressRequestSchema,
      ipam.ReleaseAddressResponseSchema,
      {
        poolId: given.poolId,
        address: "198.18.40.2",
      },
    );
    assert.equal((await address(false)).address, "198.18.40.2/24", "released, handed out again");
    await call("ReleasePool", ipam.ReleasePoolRequestSchema, ipam.ReleasePoolResponseSchema, {
      poolId: given.poolId,
    });
    await unary(client, "/plugin.GRPCController/Shutdown", new Uint8Array(0));
    assert.equal((await child.status).code, 0);
  } finally {
    client.close();
    try {
      child.kill("SIGKILL");
    } catch {
      // exited already
    }
    await child.stderr.cancel().catch(() => {});
  }
});
