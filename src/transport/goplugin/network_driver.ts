// berth.v1.NetworkDriver over gRPC: the libnetwork calls that change state, on the same network
// service as the Docker socket, checked by the Docker protocol's own schemas, same messages.
import type * as grpc from "@grpc/grpc-js";
import type { NetworkService } from "../../engine/network_service.ts";
import {
  CreateEndpointRequest,
  CreateNetworkRequest,
  EndpointRequest,
  GENERIC_OPTIONS,
  JoinRequest,
  NetworkIdRequest,
} from "../../protocol/docker_network.ts";
import { genericOptions } from "../docker/network.ts";
import { parse } from "../docker/routes.ts";
import * as pb from "./gen/berth/v1/network_pb.ts";
import { addMethods, unary, type UnaryHooks } from "./_unary.ts";

const EndpointIdRequest = EndpointRequest.pick({ EndpointID: true });

/** Adds berth.v1.NetworkDriver, served by `networks`, to `server`. */
export function addNetworkDriver(
  server: grpc.Server,
  networks: NetworkService,
  hooks: UnaryHooks,
) {
  const service = pb.NetworkDriver;
  addMethods(server, [
    unary(
      service,
      pb.CreateNetworkRequestSchema,
      pb.CreateNetworkResponseSchema,
      "CreateNetwork",
      async (r) => {
        const request = parse(CreateNetworkRequest, {
          NetworkID: r.networkId,
          Options: { [GENERIC_OPTIONS]: r.options },
          IPv4Data: r.ipv4.map((data) => ({
            Pool: data.pool,
            ...(data.gateway === "" ? {} : { Gateway: data.gateway }),
          })),
        }, "NetworkDriver.CreateNetwork");
        await networks.createNetwork({
          networkId: request.NetworkID,
          options: genericOptions(request.Options[GENERIC_OPTIONS]),
          ipv6: false,
          ipv4: request.IPv4Data.map((data) => ({
            pool: data.Pool,
            gateway: data.Gateway ?? null,
          })),
        });
        return {};
      },
      hooks,
    ),
    unary(
      service,
      pb.NetworkIdSchema,
      pb.DeleteNetworkResponseSchema,
      "DeleteNetwork",
      async (r) => {
        const { NetworkID } = parse(
          NetworkIdRequest,
          { NetworkID: r.networkId },
          "NetworkDriver.DeleteNetwork",
        );
        await networks.deleteNetwork(NetworkID);
        return {};
      },
      hooks,
    ),
    unary(
      service,
      pb.CreateEndpointRequestSchema,
      pb.CreateEndpointResponseSchema,
      "CreateEndpoint",
      async (r) => {
        const request = parse(CreateEndpointRequest, {
          NetworkID: r.networkId,
          EndpointID: r.endpointId,
          Interface: { Address: r.address, MacAddress: r.macAddress },
        }, "NetworkDriver.CreateEndpoint");
        const { Address, MacAddress } = request.Interface;
        await networks.createEndpoint(request.NetworkID, request.EndpointID, Address, MacAddress);
        return {};
      },
      hooks,
    ),
    unary(
      service,
      pb.EndpointIdSchema,
      pb.DeleteEndpointResponseSchema,
      "DeleteEndpoint",
      async (r) => {
        const { EndpointID } = parse(
          EndpointIdRequest,
          { EndpointID: r.endpointId },
          "NetworkDriver.DeleteEndpoint",
        );
        await networks.deleteEndpoint(EndpointID);
        return {};
      },
      hooks,
    ),
    unary(service, pb.JoinRequestSchema, pb.JoinResponseSchema, "Join", async (r) => {
      const request = parse(JoinRequest, {
        NetworkID: r.networkId,
        EndpointID: r.endpointId,
        SandboxKey: r.sandboxKey,
      }, "NetworkDriver.Join");
      const { srcName, gateway } = await networks.join(
        request.NetworkID,
        request.EndpointID,
        request.SandboxKey,
      );
      return { srcName, gateway: gateway ?? "" };
    }, hooks),
    unary(service, pb.EndpointIdSchema, pb.LeaveResponseSchema, "Leave", async (r) => {
      const { EndpointID } = parse(
        EndpointIdRequest,
        { EndpointID: r.endpointId },
        "NetworkDriver.Leave",
      );
      await networks.leave(EndpointID);
      return {};
    }, hooks),
  ]);
}
