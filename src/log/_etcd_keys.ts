// Where Berth's log lies in etcd: pure key arithmetic, no client. One cluster name per Berth
// cluster, so several can share an etcd; nothing here talks to the network.
//
//   /berth/<cluster>/log/events/<actor>/<after>.<i>   one event record; value: the encoded record
//   /berth/<cluster>/log/heads/<actor>                the actor's head: its last append's revision
//   /berth/<cluster>/snapshots/<actor>                the actor as its compacted events left it
//
// <actor> is encodeURIComponent(actor id): `volume/db-data` becomes `volume%2Fdb-data`, so one
// actor's prefix never covers another's (`volume/db/` would otherwise hold `volume/db/x`'s events).
// <after> is the etcd revision of the actor's head the append was decided on (0 for its first),
// zero-padded to 20 digits (a uint64's width), and <i> the record's place in its append (3
// digits): etcd's byte order of an actor's keys is then the log's order. The watch covers
// log/: event puts and head deletes (an actor dropped); snapshots stay out of it, since every
// node reads them only at start.

const CLUSTER_REGEXP = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const REVISION_WIDTH = 20;
const INDEX_WIDTH = 3;

/** The keys of one Berth cluster's log. */
export type EtcdKeys = {
  /** Prefix of the events and heads: what the watch covers. */
  log: string;
  /** Prefix of every event key of the cluster. */
  events: string;
  /** Prefix of every head key. */
  heads: string;
  /** Prefix of every snapshot key. */
  snapshots: string;
  /** Where an earlier Berth kept events and heads (versions counted, no snapshots). */
  earlier: readonly string[];
  /** Prefix of one actor's event keys. */
  actorEvents(actor: string): string;
  /** Key of record `index` (0-based) of the append decided on head revision `after`. */
  event(actor: string, after: number, index: number): string;
  /** Key of the actor's head. */
  head(actor: string): string;
  /** Key of the actor's snapshot. */
  snapshot(actor: string): string;
  /** The actor of a key under `prefix` (events, heads or snapshots), or null for another key. */
  actorOf(key: string, prefix: string): string | null;
};

/** The key layout for cluster `cluster` (lowercase letters, digits, `-`, `_`). */
export function etcdKeys(cluster: string): EtcdKeys {
  if (!CLUSTER_REGEXP.test(cluster)) {
    throw new Error(`Cannot use cluster name "${cluster}": want [a-z0-9][a-z0-9_-]*`);
  }
  const root = `/berth/${cluster}/`;
  const log = `${root}log/`;
  const events = `${log}events/`;
  const heads = `${log}heads/`;
  const snapshots = `${root}snapshots/`;
  return {
    log,
    events,
    heads,
    snapshots,
    earlier: [`${root}events/`, `${root}heads/`],
    actorEvents: (actor) => `${events}${encodeActor(actor)}/`,
    event: (actor, after, index) =>
      `${events}${encodeActor(actor)}/${pad(after, REVISION_WIDTH, 0)}.${
        pad(index, INDEX_WIDTH, 0)
      }`,
    head: (actor) => `${heads}${encodeActor(actor)}`,
    snapshot: (actor) => `${snapshots}${encodeActor(actor)}`,
    actorOf(key, prefix) {
      if (!key.startsWith(prefix)) return null;
      const [actor, ...rest] = key.slice(prefix.length).split("/");
      const nested = prefix === events ? 1 : 0;
      if (actor === undefined || actor === "" || rest.length !== nested) return null;
      try {
        return decodeURIComponent(actor);
      } catch {
        return null;
      }
    },
  };
}

/** The smallest key greater than every key starting with `prefix` (etcd's range_end). */
export function prefixEnd(prefix: string): string {
  // Every prefix here ends in "/" (0x2f), so bumping the last byte never carries.
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

function encodeActor(actor: string): string {
  if (actor === "") throw new Error("Cannot use an empty actor id");
  return encodeURIComponent(actor);
}

function pad(value: number, width: number, min: number): string {
  if (!Number.isSafeInteger(value) || value < min || String(value).length > width) {
    throw new Error(`Cannot use ${value} in a key: want an integer from ${min}, ${width} digits`);
  }
  return String(value).padStart(width, "0");
}
