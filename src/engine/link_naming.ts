// Choosing the link names of a new network or endpoint: the first candidate that no other actor
// holds and no link on the host has, claimed in the actor's own turn, so that two creates never
// get one name and the name that goes into the log is the one the host gets.
import type { Engine } from "./engine.ts";
import { IllegalStateError, NotFoundError } from "./errors.ts";
import { createLinkIndex } from "./link_index.ts";

/** A name another actor claimed first; the message says which name and who holds it. */
export class NameTakenError extends IllegalStateError {
  override name = "NameTakenError";
}

export type LinkNaming = {
  /**
   * The first of `choices` whose names are free: held by no other actor (or all by `actorId`
   * already, for a create sent again) and, with one `exists` look each, absent from the host.
   */
  choose<T>(actorId: string, choices: readonly T[], namesOf: (choice: T) => string[]): Promise<T>;
  /**
   * In the actor's turn: claims `names` for it, or throws NameTakenError, whose message is
   * `refused(name)` + " is the bridge of network "…"" (or the veth pair of an endpoint).
   */
  claim(actorId: string, names: readonly string[], refused: (name: string) => string): void;
  /** Runs `work`, a command on `actorId`, then frees the actor's names if it is gone. */
  settling<T>(actorId: string, work: Promise<T>): Promise<T>;
};

/** Names held by the network and endpoint actors of `engine` now, kept up by the service. */
export function createLinkNaming(
  engine: Engine,
  exists: (name: string) => Promise<boolean>,
): LinkNaming {
  const held: [string, string[]][] = [];
  for (const [id, { context }] of engine.list("network")) held.push([id, [context.bridge]]);
  for (const [id, { context }] of engine.list("endpoint")) {
    held.push([id, [context.host, context.peer]]);
  }
  const index = createLinkIndex(held);
  return {
    async choose(actorId, choices, namesOf) {
      for (const choice of choices) {
        const names = namesOf(choice);
        const holders = names.map((name) => index.holder(name));
        if (holders.every((holder) => holder === actorId)) return choice;
        if (holders.some((holder) => holder !== undefined && holder !== actorId)) continue;
        let free = true;
        for (const name of names) free &&= !await exists(name);
        if (free) return choice;
      }
      throw new IllegalStateError(
        `Cannot name the links of ${described(actorId)}: all ${choices.length} names are in use`,
      );
    },
    claim(actorId, names, refused) {
      const holder = index.claim(actorId, names);
      if (holder === null) return;
      const name = names.find((candidate) => index.holder(candidate) === holder)!;
      const role = holder.startsWith("network/") ? "bridge" : "veth pair";
      throw new NameTakenError(`${refused(name)} is the ${role} of ${described(holder)}`);
    },
    async settling(actorId, work) {
      try {
        return await work;
      } finally {
        await engine.read(actorId as `network/${string}`).catch((error) => {
          if (error instanceof NotFoundError) index.release(actorId);
        });
      }
    },
  };
}

function described(actorId: string): string {
  const slash = actorId.indexOf("/");
  return `${actorId.slice(0, slash)} "${actorId.slice(slash + 1, slash + 13)}"`;
}
