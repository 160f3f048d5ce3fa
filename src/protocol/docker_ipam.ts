// IpamDriver.* requests and responses, wire-exact. dockerd reads IPAM errors from `Error`.
import { z } from "zod";

const StringMap = z.record(z.string(), z.string()).nullish().transform((map) => map ?? {});

/** `Options.RequestAddressType` of the gateway's RequestAddress. */
export const GATEWAY_ADDRESS_TYPE = "com.docker.network.gateway";

export const IPAM_CAPABILITIES = { RequiresMACAddress: false, RequiresRequestReplay: false };

export const ADDRESS_SPACES = {
  LocalDefaultAddressSpace: "BerthLocal",
  GlobalDefaultAddressSpace: "BerthGlobal",
};

export const RequestPoolRequest = z.object({
  AddressSpace: z.string().default(""),
  Pool: z.string().default(""),
  SubPool: z.string().default(""),
  Options: StringMap,
  V6: z.boolean().default(false),
});
export type RequestPoolRequest = z.infer<typeof RequestPoolRequest>;

export const PoolIdRequest = z.object({ PoolID: z.string().min(1, "PoolID must not be empty") });

export const RequestAddressRequest = z.object({
  PoolID: z.string().min(1, "PoolID must not be empty"),
  Address: z.string().default(""),
  Options: StringMap,
});

export const ReleaseAddressRequest = z.object({
  PoolID: z.string().min(1, "PoolID must not be empty"),
  Address: z.string().min(1, "Address must not be empty"),
});

export type RequestPoolResponse = { PoolID: string; Pool: string; Data: Record<string, string> };
export type RequestAddressResponse = { Address: string; Data: Record<string, string> };
