// IpamDriver.* requests and responses, wire-exact. dockerd reads IPAM errors from `Error`.
import { z } from "zod";
import { OptionalStringMap as StringMap } from "../../machines/wire_map.ts";

/** `Options.RequestAddressType` of the gateway's RequestAddress. */
export const GATEWAY_ADDRESS_TYPE = "com.docker.network.gateway";

export const IPAM_CAPABILITIES = { RequiresMACAddress: false, RequiresRequestReplay: false };

export const ADDRESS_SPACES = {
  LocalDefaultAddressSpace: "BerthLocal",
  GlobalDefaultAddressSpace: "BerthGlobal",
};

/** Pools, pool ids and addresses are dotted quads with a prefix: 64 characters is generous. */
const Short = z.string().max(64, "must be at most 64 characters");

export const RequestPoolRequest = z.object({
  AddressSpace: Short.default(""),
  Pool: Short.default(""),
  SubPool: Short.default(""),
  Options: StringMap,
  V6: z.boolean().default(false),
});
export type RequestPoolRequest = z.infer<typeof RequestPoolRequest>;

export const PoolIdRequest = z.object({ PoolID: Short.min(1, "PoolID must not be empty") });

export const RequestAddressRequest = z.object({
  PoolID: Short.min(1, "PoolID must not be empty"),
  Address: Short.default(""),
  Options: StringMap,
});

export const ReleaseAddressRequest = z.object({
  PoolID: Short.min(1, "PoolID must not be empty"),
  Address: Short.min(1, "Address must not be empty"),
});

export type RequestPoolResponse = { PoolID: string; Pool: string; Data: Record<string, string> };
export type RequestAddressResponse = { Address: string; Data: Record<string, string> };
