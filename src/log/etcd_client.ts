// A thin client over etcd3 offering what an etcd event store needs: a conditional append per
// actor, paged reads for replay, a gap-free watch, and the compaction of an actor's events into
// a snapshot. Every call fails within `timeoutMs` with a StoreUnavailableError. Imports nothing
// of the engine; the key layout is in _etcd_keys.ts.
//
// An actor's head is the key its every append rewrites: its mod revision is the revision of the
// actor's last append, which is what an append names to say which state it was decided on.
import { Buffer } from "node:buffer";
import { Etcd3, type ICompare, type IKeyValue, type IRangeRequest, type IRequestOp } from "etcd3";
import { etcdKeys, prefixEnd } from "./_etcd_keys.ts";
import { faultHandling, withRetry } from "./_etcd_retry.ts";
import { type EtcdWatch, watchPrefix, type WatchStatus } from "./_etcd_watch.ts";
import { AppendConflictError } from "./etcd_errors.ts";

export type { EtcdWatch, WatchStatus };

/** One event record as etcd holds it. */
export type StoredEvent = {
  actor: string;
  /** The etcd revision of the append that wrote it (shared by a batch's records). */
  revision: number;
  /** The record as the caller encoded it. */
  value: string;
};

/** An actor's snapshot as etcd holds it: what its compacted events left. */
export type StoredSnapshot = {
  actor: string;
  /** The etcd revision of the compaction that wrote it. */
  revision: number;
  value: string;
};

/**
 * What the watch brings: an event appended, an actor's head moved (after its events, in the same
 * revision), or an actor dropped whole (its head deleted).
 */
export type LogChange =
  | { type: "event"; event: StoredEvent }
  | { type: "head"; actor: string; revision: number }
  | { type: "dropped"; actor: string; revision: number };

export type EtcdClientOptions = {
  /** `host:port` of every member; the client moves to another when one fails. */
  endpoints: string[];
  /** The Berth cluster's name: its keys live under `/berth/<cluster>/`. */
  cluster: string;
  /** Bound on every call, retries included (default 5000 ms). */
  timeoutMs?: number;
  /** TLS to etcd: the CA that signed the members' certificates, and this client's, as PEM. */
  tls?: { ca: string; cert?: string; key?: string };
};

/** The log of one Berth cluster in etcd. */
export type EtcdClient = {
  /**
   * Appends `values` as the actor's next events if its head is still at revision `head` (0: the
   * actor has no events), in one transaction; resolves to the etcd revision of the append, the
   * actor's new head. Rejects with AppendConflictError when the head moved,
   * StoreUnavailableError when etcd did not answer. Values must differ from any other writer's
   * (records carry their time and ids): a retried append that had committed is recognised by
   * its values.
   */
  appendIfHead(
    actor: string,
    head: number,
    values: readonly string[],
  ): Promise<{ revision: number }>;
  /** The actor's events still in etcd (those after its snapshot), in order, read page by page. */
  readActor(actor: string): AsyncIterable<StoredEvent>;
  /** The cluster's current etcd revision: read everything at it, then watch from it. */
  currentRevision(): Promise<number>;
  /** How many keys lie under an earlier Berth's layout (/berth/<cluster>/events/ and heads/). */
  earlierLayoutKeys(): Promise<number>;
  /** Every event of the cluster as of etcd revision `atRevision`, actor by actor, paged. */
  readAll(atRevision: number): AsyncIterable<StoredEvent>;
  /** Every actor's snapshot as of etcd revision `atRevision`, paged. */
  readSnapshots(atRevision: number): AsyncIterable<StoredSnapshot>;
  /**
   * If the actor's head is still at `head`: with a snapshot, stores it in place of every event
   * of the actor (unless a snapshot taken after `head` is there already); with null, deletes the
   * actor whole (a finished actor). Resolves to false when the head moved or the work was done.
   */
  compactActor(actor: string, head: number, snapshot: string | null): Promise<boolean>;
  /** Calls `onChange` for every change after `revision`, once each, in revision order. */
  watchFrom(
    revision: number,
    onChange: (change: LogChange) => void,
    onStatus?: (status: WatchStatus) => void,
  ): Promise<EtcdWatch>;
  close(): void;
};

const PAGE_SIZE = 500;
// etcd refuses a transaction of more than --max-txn-ops (default 128) operations; one is the head.
const MAX_VALUES = 127;

/** Connects lazily to `endpoints`; nothing is sent until the first call. */
export function createEtcdClient(options: EtcdClientOptions): EtcdClient {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const keys = etcdKeys(options.cluster);
  const { tls } = options;
  const etcd = new Etcd3({
    hosts: tls ? options.endpoints.map((endpoint) => `https://${endpoint}`) : options.endpoints,
    ...(tls
      ? {
        credentials: {
          rootCertificate: Buffer.from(tls.ca),
          ...(tls.cert ? { certChain: Buffer.from(tls.cert) } : {}),
          ...(tls.key ? { privateKey: Buffer.from(tls.key) } : {}),
        },
      }
      : {}),
    // A member that is cut off (TCP open, nothing answers) is noticed by these pings: 6 + 3 s.
    // Pinging faster than etcd's --grpc-keepalive-min-time (5 s) gets the connection closed.
    grpcOptions: {
      "grpc.keepalive_time_ms": 6_000,
      "grpc.keepalive_timeout_ms": 3_000,
      // A watch catching up sends up to 1000 revisions in one message (8.6 MB for 80 appends of
      // 100 1 kB records); over grpc-js's 4 MiB default the stream fails and retries forever.
      "grpc.max_receive_message_length": -1,
    },
    faultHandling: faultHandling(options.endpoints.length),
  });
  const under = (prefix: string) => (kv: IKeyValue) => {
    const actor = keys.actorOf(kv.key.toString(), prefix);
    if (actor === null) throw new Error(`Cannot read etcd key "${kv.key}": not under ${prefix}`);
    return { actor, revision: Number(kv.mod_revision), value: kv.value.toString() };
  };
  const toEvent: (kv: IKeyValue) => StoredEvent = under(keys.events);
  const toSnapshot: (kv: IKeyValue) => StoredSnapshot = under(keys.snapshots);
  const prefixRange = (prefix: string) => ({
    key: Buffer.from(prefix),
    range_end: Buffer.from(prefixEnd(prefix)),
  });

  async function* paged<T>(
    request: IRangeRequest,
    what: string,
    convert: (kv: IKeyValue) => T,
  ): AsyncIterable<T> {
    let key = request.key!;
    for (;;) {
      const page = await withRetry(
        what,
        timeoutMs,
        (options) => etcd.kv.range({ ...request, key, limit: PAGE_SIZE }, options),
      );
      for (const kv of page.kvs) yield convert(kv);
      const last = page.kvs.at(-1);
      if (!page.more || last === undefined) return;
      key = Buffer.concat([last.key, Buffer.from([0])]);
    }
  }

  return {
    async appendIfHead(actor, expected, values) {
      if (values.length === 0 || values.length > MAX_VALUES) {
        throw new Error(`Cannot append ${values.length} records: want 1 to ${MAX_VALUES}`);
      }
      const head = Buffer.from(keys.head(actor));
      const ourKeys = values.map((_, i) => keys.event(actor, expected, i));
      const request = {
        // A missing key's mod revision is 0: an actor without events.
        compare: [{
          key: head,
          target: "Mod" as const,
          result: "Equal" as const,
          mod_revision: expected,
        }],
        success: [
          ...values.map((value, i): IRequestOp => ({
            request_put: { key: Buffer.from(ourKeys[i]!), value: Buffer.from(value) },
          })),
          { request_put: { key: head, value: Buffer.from(String(values.length)) } },
        ],
        // On a conflict: the head, and what lies where ours would be (a retry of ours that landed).
        failure: [
          { request_range: { key: head } },
          {
            request_range: {
              key: Buffer.from(ourKeys[0]!),
              range_end: Buffer.from(ourKeys.at(-1)! + "\0"),
            },
          },
        ],
      };
      // A retried attempt whose first try had committed meets a conflict: see `landed` below.
      const response = await withRetry(
        `cannot append to "${actor}"`,
        timeoutMs,
        (options) => etcd.kv.txn(request, options),
      );
      if (response.succeeded) return { revision: Number(response.header.revision) };
      const [headRead, ours] = response.responses.map((r) => r.response_range.kvs);
      const landed = ours?.length === values.length &&
        ours.every((kv, i) => kv.value.toString() === values[i]);
      if (landed) return { revision: Number(ours.at(-1)!.mod_revision) };
      const current = headRead?.[0];
      throw new AppendConflictError(actor, expected, Number(current?.mod_revision ?? 0));
    },
    readActor(actor) {
      return paged(prefixRange(keys.actorEvents(actor)), `cannot read "${actor}"`, toEvent);
    },
    async currentRevision() {
      const response = await withRetry(
        "cannot read the revision",
        timeoutMs,
        (options) => etcd.kv.range({ key: Buffer.from(keys.events), count_only: true }, options),
      );
      return Number(response.header.revision);
    },
    async earlierLayoutKeys() {
      let count = 0;
      for (const prefix of keys.earlier) {
        const response = await withRetry(
          "cannot read the layout",
          timeoutMs,
          (options) => etcd.kv.range({ ...prefixRange(prefix), count_only: true }, options),
        );
        count += Number(response.count);
      }
      return count;
    },
    readAll(atRevision) {
      return paged(
        { ...prefixRange(keys.events), revision: atRevision },
        `cannot read the log at revision ${atRevision}`,
        toEvent,
      );
    },
    readSnapshots(atRevision) {
      return paged(
        { ...prefixRange(keys.snapshots), revision: atRevision },
        `cannot read the snapshots at revision ${atRevision}`,
        toSnapshot,
      );
    },
    async compactActor(actor, head, snapshot) {
      if (head < 1) return false;
      const headKey = Buffer.from(keys.head(actor));
      const snapshotKey = Buffer.from(keys.snapshot(actor));
      // etcd's field names, as etcd3 takes them.
      // deno-lint-ignore camelcase
      const events: IRequestOp = { request_delete_range: prefixRange(keys.actorEvents(actor)) };
      // deno-lint-ignore camelcase
      const atHead: ICompare = { key: headKey, target: "Mod", result: "Equal", mod_revision: head };
      const request = snapshot === null
        ? {
          compare: [atHead],
          success: [
            events,
            { request_delete_range: { key: snapshotKey } },
            { request_delete_range: { key: headKey } },
          ],
        }
        : {
          compare: [
            atHead,
            // Written after the head: another node compacted at this head already.
            {
              key: snapshotKey,
              target: "Mod" as const,
              result: "Less" as const,
              mod_revision: head,
            },
          ],
          success: [{ request_put: { key: snapshotKey, value: Buffer.from(snapshot) } }, events],
        };
      const response = await withRetry(
        `cannot compact "${actor}"`,
        timeoutMs,
        (options) => etcd.kv.txn(request, options),
      );
      return response.succeeded;
    },
    watchFrom(revision, onChange, onStatus = () => {}) {
      return watchPrefix(etcd, {
        prefix: keys.log,
        after: revision,
        timeoutMs,
        onKeyValue(kv, deleted) {
          const key = kv.key.toString();
          if (key.startsWith(keys.events)) {
            // Deleted events were compacted into a snapshot: nothing the log's readers need.
            if (!deleted) onChange({ type: "event", event: toEvent(kv) });
          } else {
            const actor = keys.actorOf(key, keys.heads);
            const revision = Number(kv.mod_revision);
            if (actor !== null) onChange({ type: deleted ? "dropped" : "head", actor, revision });
          }
        },
        onStatus,
      });
    },
    close() {
      etcd.close();
    },
  };
}
