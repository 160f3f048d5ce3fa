// berth.v1.NetworkDriver and IpamDriver over gRPC from `berth plugin` running in a network
// namespace of the test's own: a network with its bridge, an endpoint with its veth pair, a Join
// into a "container" namespace, then everything taken down again.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import * as ipam from "../../src/transport/goplugin/gen/berth/v1/ipam_pb.ts";
import * as net from "../../src/transport/goplugin/gen/berth/v1/network_pb.ts";
import { ip, links, netns, skipUnlessNet } from "../helpers/netns.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { call, COOKIE, endChild, firstLine, launch, unary } from "./_plugin_child.ts";

const NAME = "berth plugin makes and takes down networks and endpoints over gRPC";
const NETWORK = "ab12".repeat(16);
const ENDPOINT = "cd34".repeat(16);

Deno.test({ name: NAME, ignore: skipUnlessNet(NAME) }, async () => {
  await using dir = await tempDir();
  await using host = await netns("grpchost");
  await using box = await netns("grpcbox");
  const child = launch(dir.path, { ...COOKIE, PLUGIN_PROTOCOL_VERSIONS: "1" }, host.name);
  const { line } = await firstLine(child.stdout);
  const socket = /^1\|1\|unix\|(.+)\|grpc\|$/.exec(line)?.[1];
  assert.ok(socket, line);
  const client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
  try {
    const pool = await call(
      client,
      "berth.v1.IpamDriver/RequestPool",
      ipam.RequestPoolRequestSchema,
      ipam.RequestPoolResponseSchema,
      { pool: "198.18.44.0/24" },
    );
    await call(
      client,
      "berth.v1.NetworkDriver/CreateNetwork",
      net.CreateNetworkRequestSchema,
      net.CreateNetworkResponseSchema,
      {
        networkId: NETWORK,
        options: { mtu: "1400" },
        ipv4: [{ pool: pool.pool, gateway: "198.18.44.1/24" }],
      },
    );
    const bridge = (await links(host.name)).find((name) => name.startsWith("bthb"));
    assert.ok(bridge, "the network's bridge is in Berth's namespace");
    await assert.rejects(
      call(
        client,
        "berth.v1.NetworkDriver/CreateNetwork",
        net.CreateNetworkRequestSchema,
        net.CreateNetworkResponseSchema,
        { networkId: "cafe".repeat(16), options: { color: "blue" } },
      ),
      (error: grpc.ServiceError) =>
        error.code === grpc.status.INVALID_ARGUMENT && /unknown option "color"/.test(error.details),
    );
    await call(
      client,
      "berth.v1.NetworkDriver/CreateEndpoint",
      net.CreateEndpointRequestSchema,
      net.CreateEndpointResponseSchema,
      { networkId: NETWORK, endpointId: ENDPOINT, address: "198.18.44.2/24" },
    );
    const joined = await call(
      client,
      "berth.v1.NetworkDriver/Join",
      net.JoinRequestSchema,
      net.JoinResponseSchema,
      { networkId: NETWORK, endpointId: ENDPOINT, sandboxKey: `/var/run/netns/${box.name}` },
    );
    assert.equal(joined.gateway, "198.18.44.1");
    assert.ok((await links(host.name)).includes(joined.srcName), "the container end is made");
    // What dockerd does next: the container end goes into the sandbox.
    await ip("-n", host.name, "link", "set", joined.srcName, "netns", box.name);
    await assert.rejects(
      call(
        client,
        "berth.v1.NetworkDriver/DeleteNetwork",
        net.NetworkIdSchema,
        net.DeleteNetworkResponseSchema,
        { networkId: NETWORK },
      ),
      (error: grpc.ServiceError) => error.code === grpc.status.FAILED_PRECONDITION,
    );
    await call(
      client,
      "berth.v1.NetworkDriver/Leave",
      net.EndpointIdSchema,
      net.LeaveResponseSchema,
      {
        endpointId: ENDPOINT,
      },
    );
    // And after Leave, dockerd moves it back before DeleteEndpoint.
    await ip("-n", box.name, "link", "set", joined.srcName, "netns", host.name);
    await call(
      client,
      "berth.v1.NetworkDriver/DeleteEndpoint",
      net.EndpointIdSchema,
      net.DeleteEndpointResponseSchema,
      { endpointId: ENDPOINT },
    );
    await call(
      client,
      "berth.v1.NetworkDriver/DeleteNetwork",
      net.NetworkIdSchema,
      net.DeleteNetworkResponseSchema,
      { networkId: NETWORK },
    );
    assert.deepEqual(
      (await links(host.name)).filter((name) => name.startsWith("bth")),
      [],
      "no bridge or veth left",
    );
    await unary(client, "/plugin.GRPCController/Shutdown", new Uint8Array(0));
    assert.equal((await child.status).code, 0);
  } finally {
    await endChild(child, client);
  }
});
