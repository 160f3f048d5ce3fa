// NetworkDriver.* requests and responses, wire-exact (libnetwork's remote driver API).
import { z } from "zod";
import { emptyMap, OptionalStringMap, StringMap, wireMap } from "../../machines/wire_map.ts";

const Id = (field: string) =>
  z.string({ error: `${field} must be a string` }).regex(
    /^[0-9a-f]{12,64}$/,
    `${field} must be a hex id`,
  );
const OpenMap = z.preprocess((input) => input ?? emptyMap(), wireMap(z.unknown()));

/** The option keys under which dockerd passes `-o k=v` and the IPv6 switch. */
export const GENERIC_OPTIONS = "com.docker.network.generic";
export const ENABLE_IPV6 = "com.docker.network.enable_ipv6";

export const NETWORK_CAPABILITIES = { Scope: "local", ConnectivityScope: "local" };

const IpamData = z.object({
  AddressSpace: z.string().default(""),
  Pool: z.string(),
  Gateway: z.string().optional(),
  AuxAddresses: StringMap.nullish(),
});

export const CreateNetworkRequest = z.object({
  NetworkID: Id("NetworkID"),
  Options: OpenMap,
  IPv4Data: z.array(IpamData).nullish().transform((list) => list ?? []),
  IPv6Data: z.array(IpamData).nullish().transform((list) => list ?? []),
});
export type CreateNetworkRequest = z.infer<typeof CreateNetworkRequest>;

export const NetworkIdRequest = z.object({ NetworkID: Id("NetworkID") });

export const AllocateNetworkRequest = z.object({
  NetworkID: Id("NetworkID"),
  Options: OptionalStringMap,
});

export const CreateEndpointRequest = z.object({
  NetworkID: Id("NetworkID"),
  EndpointID: Id("EndpointID"),
  Interface: z.object({
    Address: z.string().default(""),
    AddressIPv6: z.string().default(""),
    MacAddress: z.string().default(""),
  }).nullish().transform((value) => value ?? { Address: "", AddressIPv6: "", MacAddress: "" }),
  Options: OpenMap,
});

export const EndpointRequest = z.object({
  NetworkID: Id("NetworkID"),
  EndpointID: Id("EndpointID"),
});

export const JoinRequest = z.object({
  NetworkID: Id("NetworkID"),
  EndpointID: Id("EndpointID"),
  SandboxKey: z.string().default(""),
  Options: OpenMap,
});

export const DiscoveryRequest = z.object({
  DiscoveryType: z.number().int(),
  DiscoveryData: z.unknown(),
});

export type JoinResponse = {
  InterfaceName: { SrcName: string; DstPrefix: string };
  Gateway?: string;
  DisableGatewayService: boolean;
};
