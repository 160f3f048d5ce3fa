// Which network or endpoint actor holds which link name, so that a name is checked and claimed by
// a Map lookup, whatever the number of actors, and no two actors ever get the same one.

export type LinkIndex = {
  /** The actor holding link `name`, if any. */
  holder(name: string): string | undefined;
  /** The names `actorId` holds, if any. */
  namesOf(actorId: string): readonly string[] | undefined;
  /** Claims all of `names` for `actorId`, or none: then answers the first holder in the way. */
  claim(actorId: string, names: readonly string[]): string | null;
  /** Frees the names of an actor that is gone. */
  release(actorId: string): void;
};

/** An index holding `entries` ([actor id, its link names]), e.g. the actors replay left. */
export function createLinkIndex(entries: Iterable<[string, readonly string[]]>): LinkIndex {
  const holders = new Map<string, string>();
  const held = new Map<string, readonly string[]>();
  const index: LinkIndex = {
    holder: (name) => holders.get(name),
    namesOf: (actorId) => held.get(actorId),
    claim(actorId, names) {
      for (const name of names) {
        const holder = holders.get(name);
        if (holder !== undefined && holder !== actorId) return holder;
      }
      index.release(actorId);
      for (const name of names) holders.set(name, actorId);
      held.set(actorId, names);
      return null;
    },
    release(actorId) {
      for (const name of held.get(actorId) ?? []) {
        if (holders.get(name) === actorId) holders.delete(name);
      }
      held.delete(actorId);
    },
  };
  // A log written before names were checked may give two actors one name: the first keeps it.
  for (const [actorId, names] of entries) index.claim(actorId, names);
  return index;
}
