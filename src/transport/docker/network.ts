// NetworkDriver.* routes: decode → network service → wire reply, with libnetwork's reply rules.
import type { NetworkService } from "../../engine/network_service.ts";
import {
  AllocateNetworkRequest,
  CreateEndpointRequest,
  CreateNetworkRequest,
  DiscoveryRequest,
  ENABLE_IPV6,
  EndpointRequest,
  GENERIC_OPTIONS,
  JoinRequest,
  type JoinResponse,
  NETWORK_CAPABILITIES,
  NetworkIdRequest,
} from "../../protocol/docker_network.ts";
import { z } from "zod";
import { emptyMap, mapOf, quoted, wireMap } from "../../../machines/wire_map.ts";
import { InvalidRequestError } from "../../engine/errors.ts";
import { parse, type Routes } from "./routes.ts";

/**
 * The fourteen NetworkDriver routes over `networks`; `scope` "global" when its networks span the
 * nodes of a cluster.
 */
export function networkRoutes(
  networks: NetworkService,
  scope: "local" | "global" = "local",
): Routes {
  return {
    "/NetworkDriver.GetCapabilities": () =>
      scope === "local"
        ? NETWORK_CAPABILITIES
        : { ...NETWORK_CAPABILITIES, Scope: scope, ConnectivityScope: scope },
    async "/NetworkDriver.CreateNetwork"(body) {
      const request = parse(CreateNetworkRequest, body, "NetworkDriver.CreateNetwork");
      await networks.createNetwork({
        networkId: request.NetworkID,
        options: genericOptions(request.Options[GENERIC_OPTIONS]),
        ipv6: request.Options[ENABLE_IPV6] === true || request.IPv6Data.length > 0,
        ipv4: request.IPv4Data.map((data) => ({ pool: data.Pool, gateway: data.Gateway ?? null })),
      });
      return {};
    },
    async "/NetworkDriver.DeleteNetwork"(body) {
      const { NetworkID } = parse(NetworkIdRequest, body, "NetworkDriver.DeleteNetwork");
      await networks.deleteNetwork(NetworkID);
      return {};
    },
    // Only global-scope drivers in Swarm get these; Berth's cluster networks need nothing from
    // them (its records travel in etcd), so they change nothing.
    "/NetworkDriver.AllocateNetwork"(body) {
      const { Options } = parse(AllocateNetworkRequest, body, "NetworkDriver.AllocateNetwork");
      return { Options };
    },
    "/NetworkDriver.FreeNetwork"(body) {
      parse(NetworkIdRequest, body, "NetworkDriver.FreeNetwork");
      return {};
    },
    async "/NetworkDriver.CreateEndpoint"(body) {
      const request = parse(CreateEndpointRequest, body, "NetworkDriver.CreateEndpoint");
      const { Address, AddressIPv6, MacAddress } = request.Interface;
      if (AddressIPv6 !== "") {
        throw new InvalidRequestError("Cannot create endpoint: IPv6 is not supported");
      }
      const { mac } = await networks.createEndpoint(
        request.NetworkID,
        request.EndpointID,
        Address,
        MacAddress,
      );
      // Never echo what dockerd gave (it refuses a changed interface); add only a MAC it left
      // empty (on a cluster, where the other nodes forward to it).
      return { Interface: mac === null ? null : { MacAddress: mac } };
    },
    async "/NetworkDriver.DeleteEndpoint"(body) {
      const { EndpointID } = parse(EndpointRequest, body, "NetworkDriver.DeleteEndpoint");
      await networks.deleteEndpoint(EndpointID);
      return {};
    },
    "/NetworkDriver.EndpointOperInfo"(body) {
      parse(EndpointRequest, body, "NetworkDriver.EndpointOperInfo");
      return { Value: {} };
    },
    async "/NetworkDriver.Join"(body): Promise<JoinResponse> {
      const request = parse(JoinRequest, body, "NetworkDriver.Join");
      const { srcName, gateway } = await networks.join(
        request.NetworkID,
        request.EndpointID,
        request.SandboxKey,
      );
      // DisableGatewayService keeps libnetwork from adding docker_gwbridge (and its NAT).
      return {
        InterfaceName: { SrcName: srcName, DstPrefix: "eth" },
        ...(gateway === null ? {} : { Gateway: gateway }),
        DisableGatewayService: true,
      };
    },
    async "/NetworkDriver.Leave"(body) {
      const { EndpointID } = parse(EndpointRequest, body, "NetworkDriver.Leave");
      await networks.leave(EndpointID);
      return {};
    },
    "/NetworkDriver.DiscoverNew"(body) {
      parse(DiscoveryRequest, body, "NetworkDriver.DiscoverNew");
      return {};
    },
    "/NetworkDriver.DiscoverDelete"(body) {
      parse(DiscoveryRequest, body, "NetworkDriver.DiscoverDelete");
      return {};
    },
    // Berth publishes no ports and sets up no NAT: nothing to program or revoke.
    "/NetworkDriver.ProgramExternalConnectivity"(body) {
      parse(EndpointRequest, body, "NetworkDriver.ProgramExternalConnectivity");
      return {};
    },
    "/NetworkDriver.RevokeExternalConnectivity"(body) {
      parse(EndpointRequest, body, "NetworkDriver.RevokeExternalConnectivity");
      return {};
    },
  };
}

/** `-o k=v` as dockerd nests them: a null-prototype map, bounded like every map from the wire. */
export function genericOptions(value: unknown): Record<string, string> {
  if (value === undefined || value === null) return emptyMap();
  const parsed = AnyMap.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = [GENERIC_OPTIONS, ...issue.path.map(String)].map(quoted).join(".");
    throw new InvalidRequestError(
      `Invalid NetworkDriver.CreateNetwork request: ${where} ${issue.message}`,
    );
  }
  return mapOf(Object.entries(parsed.data).map(([key, item]) => [key, String(item)]));
}

const AnyMap = wireMap(z.unknown());
