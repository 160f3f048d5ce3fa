// IpamDriver.* routes: decode → IPAM service → wire reply. Errors also carry `Error` (server.ts).
import type { IpamService } from "../../engine/ipam_service.ts";
import {
  ADDRESS_SPACES,
  GATEWAY_ADDRESS_TYPE,
  IPAM_CAPABILITIES,
  PoolIdRequest,
  ReleaseAddressRequest,
  RequestAddressRequest,
  type RequestAddressResponse,
  RequestPoolRequest,
  type RequestPoolResponse,
} from "../../protocol/docker_ipam.ts";
import { parse, type Routes } from "./routes.ts";

/** The six IpamDriver routes over `ipam`. */
export function ipamRoutes(ipam: IpamService): Routes {
  return {
    "/IpamDriver.GetCapabilities": () => IPAM_CAPABILITIES,
    "/IpamDriver.GetDefaultAddressSpaces": () => ADDRESS_SPACES,
    async "/IpamDriver.RequestPool"(body): Promise<RequestPoolResponse> {
      const request = parse(RequestPoolRequest, body, "IpamDriver.RequestPool");
      const { poolId, pool } = await ipam.requestPool({
        space: request.AddressSpace,
        pool: request.Pool,
        subPool: request.SubPool,
        options: request.Options,
        v6: request.V6,
      });
      return { PoolID: poolId, Pool: pool, Data: {} };
    },
    async "/IpamDriver.ReleasePool"(body) {
      const { PoolID } = parse(PoolIdRequest, body, "IpamDriver.ReleasePool");
      await ipam.releasePool(PoolID);
      return {};
    },
    async "/IpamDriver.RequestAddress"(body): Promise<RequestAddressResponse> {
      const request = parse(RequestAddressRequest, body, "IpamDriver.RequestAddress");
      const role = request.Options.RequestAddressType === GATEWAY_ADDRESS_TYPE
        ? "gateway"
        : "endpoint";
      const address = await ipam.requestAddress(request.PoolID, request.Address, role);
      return { Address: address, Data: {} };
    },
    async "/IpamDriver.ReleaseAddress"(body) {
      const { PoolID, Address } = parse(ReleaseAddressRequest, body, "IpamDriver.ReleaseAddress");
      await ipam.releaseAddress(PoolID, Address);
      return {};
    },
  };
}
