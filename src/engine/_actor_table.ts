// The engine's actors by id, with an index per kind: listing one kind walks only that kind, so
// a RequestPool among 100,000 volumes looks at pools alone.

export type ActorTable<A extends { id: string }> = {
  get(id: string): A | undefined;
  set(actor: A): void;
  delete(id: string): void;
  values(): IterableIterator<A>;
  /** How many actors the table holds (live ones and those with a command in flight). */
  readonly size: number;
  /** The actors whose id starts with `<kind>/`. */
  ofKind(kind: string): IterableIterator<A>;
};

export function createActorTable<A extends { id: string }>(): ActorTable<A> {
  const all = new Map<string, A>();
  const byKind = new Map<string, Map<string, A>>();
  const kindOf = (id: string) => id.slice(0, id.indexOf("/"));
  return {
    get: (id) => all.get(id),
    set(actor) {
      all.set(actor.id, actor);
      const kind = kindOf(actor.id);
      let index = byKind.get(kind);
      if (!index) byKind.set(kind, index = new Map());
      index.set(actor.id, actor);
    },
    delete(id) {
      all.delete(id);
      byKind.get(kindOf(id))?.delete(id);
    },
    values: () => all.values(),
    get size() {
      return all.size;
    },
    ofKind: (kind) => (byKind.get(kind) ?? new Map<string, A>()).values(),
  };
}
