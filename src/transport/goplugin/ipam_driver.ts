// berth.v1.IpamDriver over gRPC: the IPAM calls that change state, on the same IPAM service as the
// Docker socket, checked by the Docker protocol's own schemas, with the same messages.
import type * as grpc from "@grpc/grpc-js";
import { mapOf } from "../../../machines/wire_map.ts";
import type { IpamService } from "../../engine/ipam_service.ts";
import {
  PoolIdRequest,
  ReleaseAddressRequest,
  RequestAddressRequest,
  RequestPoolRequest,
} from "../../protocol/docker_ipam.ts";
import { parse } from "../docker/routes.ts";
import * as pb from "./gen/berth/v1/ipam_pb.ts";
import { addMethods, unary, type UnaryHooks } from "./_unary.ts";

/** Adds berth.v1.IpamDriver, served by `ipam`, to `server`. */
export function addIpamDriver(
  server: grpc.Server,
  ipam: IpamService,
  hooks: UnaryHooks,
) {
  const service = pb.IpamDriver;
  addMethods(server, [
    unary(
      service,
      pb.RequestPoolRequestSchema,
      pb.RequestPoolResponseSchema,
      "RequestPool",
      async (r) => {
        const request = parse(RequestPoolRequest, {
          AddressSpace: r.addressSpace,
          Pool: r.pool,
          SubPool: r.subPool,
          Options: mapOf(Object.entries(r.options)),
          V6: r.v6,
        }, "IpamDriver.RequestPool");
        const { poolId, pool } = await ipam.requestPool({
          space: request.AddressSpace,
          pool: request.Pool,
          subPool: request.SubPool,
          options: request.Options,
          v6: request.V6,
        });
        return { poolId, pool };
      },
      hooks,
    ),
    unary(
      service,
      pb.ReleasePoolRequestSchema,
      pb.ReleasePoolResponseSchema,
      "ReleasePool",
      async (r) => {
        await ipam.releasePool(
          parse(PoolIdRequest, { PoolID: r.poolId }, "IpamDriver.ReleasePool").PoolID,
        );
        return {};
      },
      hooks,
    ),
    unary(
      service,
      pb.RequestAddressRequestSchema,
      pb.RequestAddressResponseSchema,
      "RequestAddress",
      async (r) => {
        const { PoolID, Address } = parse(
          RequestAddressRequest,
          { PoolID: r.poolId, Address: r.address },
          "IpamDriver.RequestAddress",
        );
        return {
          address: await ipam.requestAddress(PoolID, Address, r.gateway ? "gateway" : "endpoint"),
        };
      },
      hooks,
    ),
    unary(
      service,
      pb.ReleaseAddressRequestSchema,
      pb.ReleaseAddressResponseSchema,
      "ReleaseAddress",
      async (r) => {
        const { PoolID, Address } = parse(
          ReleaseAddressRequest,
          { PoolID: r.poolId, Address: r.address },
          "IpamDriver.ReleaseAddress",
        );
        await ipam.releaseAddress(PoolID, Address);
        return {};
      },
      hooks,
    ),
  ]);
}
