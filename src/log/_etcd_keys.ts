// Where Berth's log lies in etcd: pure key arithmetic, no client. One cluster name per Berth
// cluster, so several can share an etcd; nothing here talks to the network.
//
//   /berth/<cluster>/events/<actor>/<version>   one event record; value: the encoded record
//   /berth/<cluster>/heads/<actor>              the actor's version (its event count), decimal
//
// <actor> is encodeURIComponent(actor id): `volume/db-data` becomes `volume%2Fdb-data`, so one
// actor's prefix never covers another's (`volume/db/` would otherwise hold `volume/db/x`'s events).
// <version> is 1, 2, 3, … zero-padded to 20 digits (a uint64's width), so etcd's byte order of
// keys is the numeric order and a range read returns an actor's events in order. Heads live apart
// from events so that the watch and the full read take one prefix holding nothing but events.

const CLUSTER_REGEXP = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const VERSION_WIDTH = 20;

/** The keys of one Berth cluster's log. */
export type EtcdKeys = {
  /** Prefix of every event key of the cluster: what readAll and the watch cover. */
  events: string;
  /** Prefix of one actor's event keys. */
  actorEvents(actor: string): string;
  /** Key of event `version` (1-based) of `actor`. */
  event(actor: string, version: number): string;
  /** Key of the actor's head (its current version). */
  head(actor: string): string;
  /** Actor and version of an event key, or null for a key outside the events prefix. */
  parseEvent(key: string): { actor: string; version: number } | null;
};

/** The key layout for cluster `cluster` (lowercase letters, digits, `-`, `_`). */
export function etcdKeys(cluster: string): EtcdKeys {
  if (!CLUSTER_REGEXP.test(cluster)) {
    throw new Error(`Cannot use cluster name "${cluster}": want [a-z0-9][a-z0-9_-]*`);
  }
  const root = `/berth/${cluster}/`;
  const events = `${root}events/`;
  return {
    events,
    actorEvents: (actor) => `${events}${encodeActor(actor)}/`,
    event: (actor, version) => `${events}${encodeActor(actor)}/${padVersion(version)}`,
    head: (actor) => `${root}heads/${encodeActor(actor)}`,
    parseEvent(key) {
      if (!key.startsWith(events)) return null;
      const [actor, version, ...rest] = key.slice(events.length).split("/");
      if (actor === undefined || version === undefined || rest.length > 0) return null;
      return { actor: decodeURIComponent(actor), version: Number(version) };
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

function padVersion(version: number): string {
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new Error(`Cannot use version ${version}: want a positive integer`);
  }
  return String(version).padStart(VERSION_WIDTH, "0");
}
