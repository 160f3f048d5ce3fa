// NetworkDriver commands over network and endpoint actors: what each call needs to know of the
// other actors (a network's bridge for its endpoints, its endpoint count before deletion).
import { z } from "zod";
import { someNames } from "../../machines/wire_map.ts";
import type { NetworkContext } from "../../machines/network_machine.ts";
import { macFromAddress, VXLAN_MTU } from "../backends/vxlan_plumbing.ts";
import type { Engine } from "./engine.ts";
import { EffectFailedError, InvalidRequestError, NotFoundError } from "./errors.ts";
import { createLinkNaming, NameTakenError } from "./link_naming.ts";

const BRIDGE_NAME_REGEXP = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$/;

/** `docker network create -o k=v`: the options Berth's networks take. */
const NetworkOptions = z.strictObject({
  mtu: z.string().regex(/^\d+$/, "must be a number").refine(
    (value) => Number(value) >= 68 && Number(value) <= 65535,
    "must be from 68 to 65535",
  ).optional(),
  bridge: z.string().regex(BRIDGE_NAME_REGEXP, "must be a link name of 1 to 15 characters")
    .optional(),
});

export type NetworkRequest = {
  networkId: string;
  options: Record<string, string>;
  ipv6: boolean;
  ipv4: { pool: string; gateway: string | null }[];
};

export type JoinResult = { srcName: string; gateway: string | null };

export type NetworkService = {
  createNetwork(request: NetworkRequest): Promise<void>;
  /** Succeeds for unknown networks: dockerd repeats it after failures and restarts. */
  deleteNetwork(networkId: string): Promise<void>;
  createEndpoint(
    networkId: string,
    endpointId: string,
    address: string,
    mac: string,
  ): Promise<{ mac: string | null }>;
  deleteEndpoint(endpointId: string): Promise<void>;
  join(networkId: string, endpointId: string, sandboxKey: string): Promise<JoinResult>;
  leave(endpointId: string): Promise<void>;
};

export type LinkNames = {
  /** The names a network's bridge may take, best first. */
  bridgeNames(networkId: string): string[];
  /** The names an endpoint's veth pair may take, best first. */
  vethNameChoices(endpointId: string): { host: string; peer: string }[];
  /** Whether a link of that name is in Berth's own namespace (not moved into a container). */
  exists(name: string): Promise<boolean>;
};

const short = (id: string) => id.slice(0, 12);
// A create that lost the race for a name to a twin chooses again; a third loss is no race.
const NAMING_ATTEMPTS = 3;

/** On a log several Berths share: this node's name and underlay address. */
export type ClusterNode = { node: string; advertise: string };

/**
 * NetworkDriver commands over `engine`, naming links with `names`. On a cluster (`cluster`) the
 * records say which node made each network and endpoint, networks default to the VXLAN MTU, and
 * an endpoint dockerd gave no MAC gets one (the other nodes forward to it by MAC).
 */
export function createNetworkService(
  engine: Engine,
  names: LinkNames,
  cluster?: ClusterNode,
): NetworkService {
  const naming = createLinkNaming(engine, names.exists);
  async function network(networkId: string): Promise<NetworkContext> {
    return (await engine.read(`network/${networkId}`)).context;
  }
  function endpointsOf(networkId: string) {
    return engine.list("endpoint")
      .filter(([, snapshot]) => snapshot.context.networkId === networkId);
  }
  // dockerd sends DeleteNetwork only once it has no endpoint left on the network, so an endpoint
  // Berth still has lost its Leave or DeleteEndpoint while Berth was down (dockerd gives up after
  // 15 s). Its peer is then back here, or was never made: remove it, or the bridge leaks forever.
  // One whose pair is whole with its peer inside a container is really in use: that one refuses
  // the delete. The peer is looked for first: a pair that vanishes while we look (a missing link
  // is missing, however `ip` words it) then has no host end either, and is no one's.
  async function dropAbandoned(networkId: string) {
    for (const [id, snapshot] of endpointsOf(networkId)) {
      const { host, peer, plumbed, node } = snapshot.context;
      // Another node's endpoint has its links there: it is that node's to settle.
      if (cluster !== undefined && node !== undefined && node !== cluster.node) continue;
      const look = (name: string) => linkIsHere(names, name, networkId);
      if (plumbed && !await look(peer) && await look(host)) continue;
      await ignoreNotFound(naming.settling(id, engine.dispatch(id, { type: "endpoint.delete" })));
    }
  }
  // Runs a create that takes the first free name, claimed in the actor's turn. Creates of two
  // twins at once may both find one name free: the loser chooses again, up to `attempts` times.
  async function named<T>(attempts: number, work: () => Promise<T>): Promise<T> {
    for (let attempt = 1;; attempt++) {
      try {
        return await work();
      } catch (error) {
        if (!(error instanceof NameTakenError) || attempt >= attempts) throw error;
      }
    }
  }
  return {
    async createNetwork(request) {
      const id = short(request.networkId);
      const options = checkOptions(id, request.options);
      if (request.ipv6) {
        throw new InvalidRequestError(`Cannot create network "${id}": IPv6 is not supported`);
      }
      if (request.ipv4.length > 1) {
        throw new InvalidRequestError(
          `Cannot create network "${id}": only one IPv4 pool is supported`,
        );
      }
      const data = request.ipv4[0];
      const actorId = `network/${request.networkId}` as const;
      const create = {
        type: "network.create",
        mtu: options.mtu === undefined ? (cluster ? VXLAN_MTU : null) : Number(options.mtu),
        gateway: data?.gateway ?? null,
        pool: data?.pool ?? null,
        options: request.options,
        ...(cluster ? { node: cluster.node } : {}),
      };
      const refused = (name: string) => `Cannot create network "${id}": bridge "${name}"`;
      // A `-o bridge=` name is the user's choice: refused, not replaced, when it is taken.
      const given = options.bridge;
      await named(given === undefined ? NAMING_ATTEMPTS : 1, async () => {
        const bridge = given ??
          await naming.choose(actorId, names.bridgeNames(request.networkId), (name) => [name]);
        await naming.settling(
          actorId,
          engine.dispatch(actorId, (snapshot) => {
            // Sent again: the name the log holds, whatever is free now.
            if (!snapshot.matches("absent")) return { ...create, bridge: snapshot.context.bridge };
            naming.claim(actorId, [bridge], refused);
            return { ...create, bridge };
          }),
        );
      });
    },
    async deleteNetwork(networkId) {
      await dropAbandoned(networkId);
      const actorId = `network/${networkId}` as const;
      await ignoreNotFound(naming.settling(
        actorId,
        engine.dispatch(actorId, () => ({
          type: "network.delete",
          endpoints: endpointsOf(networkId).length,
        })),
      ));
    },
    async createEndpoint(networkId, endpointId, address, given) {
      const { bridge, mtu } = await network(networkId);
      const actorId = `endpoint/${endpointId}` as const;
      const made = cluster !== undefined && given === "" && address !== "";
      const mac = made ? macFromAddress(address) : cluster ? given.toLowerCase() : given;
      const create = {
        type: "endpoint.create",
        networkId,
        address,
        mac,
        bridge,
        mtu,
        ...(cluster ? { node: cluster.node, underlay: cluster.advertise } : {}),
      };
      const refused = (name: string) =>
        `Cannot create endpoint "${short(endpointId)}": veth "${name}"`;
      await named(NAMING_ATTEMPTS, async () => {
        const choices = names.vethNameChoices(endpointId);
        const pair = await naming.choose(actorId, choices, ({ host, peer }) => [host, peer]);
        await naming.settling(
          actorId,
          engine.dispatch(actorId, (snapshot) => {
            const { host, peer } = snapshot.matches("absent") ? pair : snapshot.context;
            if (snapshot.matches("absent")) naming.claim(actorId, [host, peer], refused);
            return { ...create, host, peer };
          }),
        );
      });
      return { mac: made ? mac : null };
    },
    async deleteEndpoint(endpointId) {
      const actorId = `endpoint/${endpointId}` as const;
      await ignoreNotFound(
        naming.settling(actorId, engine.dispatch(actorId, { type: "endpoint.delete" })),
      );
    },
    async join(networkId, endpointId, sandboxKey) {
      const { gateway } = await network(networkId);
      const snapshot = await engine.dispatch(`endpoint/${endpointId}`, {
        type: "endpoint.join",
        sandboxKey,
      });
      const { peer } = snapshot.context;
      return { srcName: peer, gateway: gateway === null ? null : gateway.split("/")[0]! };
    },
    async leave(endpointId) {
      await engine.dispatch(`endpoint/${endpointId}`, { type: "endpoint.leave" });
    },
  };
}

function checkOptions(id: string, options: Record<string, string>) {
  const parsed = NetworkOptions.safeParse(options);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  if (issue.code === "unrecognized_keys") {
    const keys = someNames(issue.keys);
    throw new InvalidRequestError(
      `Cannot create network "${id}": unknown option ${keys} (known: mtu, bridge)`,
    );
  }
  throw new InvalidRequestError(
    `Cannot create network "${id}": option "${issue.path.join(".")}" ${issue.message}`,
  );
}

/** `names.exists`, with a failed look told as the network's delete failing, in one line. */
async function linkIsHere(names: LinkNames, name: string, networkId: string): Promise<boolean> {
  try {
    return await names.exists(name);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new EffectFailedError(
      `Cannot delete network "${short(networkId)}": cannot look for link "${name}": ${reason}`,
      { cause: error },
    );
  }
}

async function ignoreNotFound(work: Promise<unknown>) {
  try {
    await work;
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
  }
}
