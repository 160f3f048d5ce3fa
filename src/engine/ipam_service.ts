// IPAM on top of pool actors: which pool to hand out, which address is lowest free. The pool
// machine keeps the books (an address is never out twice); this picks, inside the actor's turn.
import { type AddressRole, lowestFree, type PoolContext } from "../../machines/pool_machine.ts";
import {
  type Cidr,
  contains,
  firstUsable,
  formatCidr,
  formatIp,
  IpamError,
  isUsable,
  lastUsable,
  nextFreePool,
  overlaps,
  parseCidr,
  parseIp,
  withPrefix,
} from "../backends/ipam.ts";
import type { ActorId } from "../../machines/mod.ts";
import { quoted } from "../../machines/wire_map.ts";
import type { Engine } from "./engine.ts";
import { IllegalStateError, InvalidRequestError, NotFoundError } from "./errors.ts";

export type PoolRequest = {
  space: string;
  pool: string;
  subPool: string;
  options: Record<string, string>;
  v6: boolean;
};

export type IpamService = {
  requestPool(request: PoolRequest): Promise<{ poolId: string; pool: string }>;
  releasePool(poolId: string): Promise<void>;
  /** Reserves `address` (bare IP, or "" for the lowest free); answers it as CIDR. */
  requestAddress(poolId: string, address: string, role: AddressRole): Promise<string>;
  releaseAddress(poolId: string, address: string): Promise<void>;
};

const poolActor = (poolId: string): ActorId<"pool"> => `pool/${poolId}`;

/** How many pools a RequestPool without a subnet tries when other nodes take them first. */
const CHOICE_ATTEMPTS = 16;

/** IPAM over `engine`, handing out `prefix`-long pools from `range` when none is asked for. */
export function createIpamService(engine: Engine, range: Cidr, prefix: number): IpamService {
  // Choosing a pool looks at every pool: one choice at a time, so two never pick the same.
  let choosing: Promise<unknown> = Promise.resolve();
  function oneAtATime<T>(work: () => Promise<T>): Promise<T> {
    const result = choosing.then(work, work);
    choosing = result.catch(() => {});
    return result;
  }

  function takenPools(): { id: string; cidr: Cidr }[] {
    return engine.list("pool").map(([id, snapshot]) => ({
      id: id.slice("pool/".length),
      cidr: parseCidr(snapshot.context.cidr),
    }));
  }

  // The same explicit pool, asked for again before any address or network used it: dockerd
  // resending a RequestPool whose answer a crash lost. Answer it again instead of refusing.
  function isResent(request: PoolRequest, cidr: string): boolean {
    const pool = engine.list("pool").find(([id]) => id === poolActor(cidr))?.[1];
    if (!pool) return false;
    const { context } = pool;
    const claimed = engine.list("network").some(([, network]) => network.context.pool === cidr);
    return !claimed && context.addresses.size === 0 &&
      context.space === request.space &&
      JSON.stringify(context.options) === JSON.stringify(request.options);
  }

  function choose(request: PoolRequest): Cidr {
    if (request.v6) {
      throw new InvalidRequestError("Cannot request an IPv6 pool: Berth hands out IPv4 only");
    }
    if (request.subPool !== "") {
      throw new InvalidRequestError(`Cannot request pool: SubPool (--ip-range) is not supported`);
    }
    const unknown = Object.keys(request.options);
    if (unknown.length > 0) {
      throw new InvalidRequestError(
        `Cannot request pool: unknown IPAM option ${quoted(unknown[0]!)}`,
      );
    }
    const taken = takenPools();
    if (request.pool === "") {
      const free = nextFreePool(range, prefix, taken.map((pool) => pool.cidr));
      if (!free) {
        throw new IllegalStateError(
          `Cannot request pool: no free /${prefix} left in ${formatCidr(range)}`,
        );
      }
      return free;
    }
    const wanted = parse(() => parseCidr(request.pool));
    if (isResent(request, formatCidr(wanted))) return wanted;
    const clash = taken.find((pool) => overlaps(pool.cidr, wanted));
    if (clash) {
      throw new IllegalStateError(
        `Cannot request pool "${formatCidr(wanted)}": it overlaps pool "${clash.id}"`,
      );
    }
    return wanted;
  }

  return {
    requestPool(request) {
      return oneAtATime(async () => {
        for (let attempt = 1;; attempt++) {
          const cidr = choose(request);
          const poolId = formatCidr(cidr);
          if (request.pool !== "" && isResent(request, poolId)) return { poolId, pool: poolId };
          try {
            await engine.dispatch(poolActor(poolId), {
              type: "pool.request",
              cidr: poolId,
              space: request.space,
              options: request.options,
            });
            return { poolId, pool: poolId };
          } catch (error) {
            // On a log several nodes share, another one took the pool picked here first: the
            // engine applied its record, so the next choice sees it taken.
            const raced = request.pool === "" && error instanceof IllegalStateError;
            if (!raced || attempt >= CHOICE_ATTEMPTS) throw error;
          }
        }
      });
    },
    async releasePool(poolId) {
      // dockerd resends a release whose answer a crash lost: an unknown pool is already released.
      try {
        await engine.dispatch(poolActor(poolId), { type: "pool.release" });
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
      }
    },
    async requestAddress(poolId, address, role) {
      let chosen = 0;
      let length = 0;
      await engine.dispatch(poolActor(poolId), (snapshot) => {
        if (snapshot.value === "absent") throw new NotFoundError(`Pool "${poolId}" not found`);
        const { context } = snapshot;
        const cidr = parseCidr(context.cidr);
        length = cidr.prefix;
        // A pool has one gateway: a second gateway request is dockerd resending a lost answer.
        const gateway = context.gateway;
        if (role === "gateway" && gateway !== null && (address === "" || gateway === address)) {
          chosen = parseIp(gateway);
          return null;
        }
        chosen = address === "" ? pickLowest(cidr, context) : pickGiven(cidr, address);
        return { type: "pool.address.reserve", address: formatIp(chosen), role };
      });
      return withPrefix(chosen, length);
    },
    async releaseAddress(poolId, address) {
      const ip = parse(() => parseIp(address.split("/")[0]!));
      try {
        await engine.dispatch(poolActor(poolId), (snapshot) => {
          const held = snapshot.context.addresses.has(formatIp(ip));
          return held ? { type: "pool.address.release", address: formatIp(ip) } : null;
        });
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
      }
    },
  };
}

function pickLowest(cidr: Cidr, context: PoolContext): number {
  const ip = lowestFree(context, firstUsable(cidr), lastUsable(cidr));
  if (ip === null) {
    throw new IllegalStateError(`Cannot request address: pool "${context.cidr}" is full`);
  }
  return ip;
}

function pickGiven(cidr: Cidr, address: string): number {
  // dockerd sends a bare IP for --ip and --gateway; accept a CIDR too and use its address.
  const ip = parse(() => parseIp(address.split("/")[0]!));
  if (!contains(cidr, ip) || !isUsable(cidr, ip)) {
    throw new InvalidRequestError(
      `Cannot request address "${address}": not a usable address of pool "${formatCidr(cidr)}"`,
    );
  }
  return ip;
}

function parse<T>(work: () => T): T {
  try {
    return work();
  } catch (error) {
    if (error instanceof IpamError) throw new InvalidRequestError(error.message);
    throw error;
  }
}
