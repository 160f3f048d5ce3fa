// A thin client over etcd3 offering what an etcd event store needs: a conditional append per
// actor, paged reads for replay and a gap-free watch. Every call fails within `timeoutMs` with a
// StoreUnavailableError. Imports nothing of the engine; the key layout is in _etcd_keys.ts.
import { Buffer } from "node:buffer";
import { Etcd3, type IKeyValue, type IRangeRequest, type IRequestOp } from "etcd3";
import { etcdKeys, prefixEnd } from "./_etcd_keys.ts";
import { faultHandling, withRetry } from "./_etcd_retry.ts";
import { type EtcdWatch, watchPrefix, type WatchStatus } from "./_etcd_watch.ts";
import { AppendConflictError } from "./etcd_errors.ts";

export type { EtcdWatch, WatchStatus };

/** One event record as etcd holds it. */
export type StoredEvent = {
  actor: string;
  /** 1, 2, 3, … within the actor. */
  version: number;
  /** The etcd revision of the append that wrote it (shared by a batch's records). */
  revision: number;
  /** The record as the caller encoded it. */
  value: string;
};

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
   * Appends `values` as the actor's next events if its version is still `expectedVersion`, in one
   * transaction; resolves to the actor's new version and the etcd revision of the append. Rejects
   * with AppendConflictError when the head moved, StoreUnavailableError when etcd did not answer.
   * Values must differ from any other writer's (records carry their time and ids): a retried
   * append that had committed is recognised by its values.
   */
  appendIfHead(
    actor: string,
    expectedVersion: number,
    values: readonly string[],
  ): Promise<{ version: number; revision: number }>;
  /** The actor's events after version `after` (default 0), in order, read page by page. */
  readActor(actor: string, after?: number): AsyncIterable<StoredEvent>;
  /** The cluster's current etcd revision: read everything at it, then watch from it. */
  currentRevision(): Promise<number>;
  /** Every event of the cluster as of etcd revision `atRevision`, actor by actor, paged. */
  readAll(atRevision: number): AsyncIterable<StoredEvent>;
  /** Calls `onEvent` for every event appended after `revision`, once each, in revision order. */
  watchFrom(
    revision: number,
    onEvent: (event: StoredEvent) => void,
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
  const toEvent = (kv: IKeyValue): StoredEvent => {
    const where = keys.parseEvent(kv.key.toString());
    if (where === null) throw new Error(`Cannot read etcd key "${kv.key}": not an event key`);
    return { ...where, revision: Number(kv.mod_revision), value: kv.value.toString() };
  };

  async function* paged(request: IRangeRequest, what: string): AsyncIterable<StoredEvent> {
    let key = request.key!;
    for (;;) {
      const page = await withRetry(
        what,
        timeoutMs,
        (options) => etcd.kv.range({ ...request, key, limit: PAGE_SIZE }, options),
      );
      for (const kv of page.kvs) yield toEvent(kv);
      const last = page.kvs.at(-1);
      if (!page.more || last === undefined) return;
      key = Buffer.concat([last.key, Buffer.from([0])]);
    }
  }

  return {
    async appendIfHead(actor, expectedVersion, values) {
      if (values.length === 0 || values.length > MAX_VALUES) {
        throw new Error(`Cannot append ${values.length} records: want 1 to ${MAX_VALUES}`);
      }
      const next = expectedVersion + values.length;
      const head = Buffer.from(keys.head(actor));
      const request = {
        compare: [
          expectedVersion === 0
            ? { key: head, target: "Version" as const, result: "Equal" as const, version: 0 }
            : {
              key: head,
              target: "Value" as const,
              result: "Equal" as const,
              value: Buffer.from(String(expectedVersion)),
            },
        ],
        success: [
          ...values.map((value, i): IRequestOp => ({
            request_put: {
              key: Buffer.from(keys.event(actor, expectedVersion + i + 1)),
              value: Buffer.from(value),
            },
          })),
          { request_put: { key: head, value: Buffer.from(String(next)) } },
        ],
        // On a conflict: the head, and what lies where ours would be (a retry of ours that landed).
        failure: [
          { request_range: { key: head } },
          {
            request_range: {
              key: Buffer.from(keys.event(actor, expectedVersion + 1)),
              range_end: Buffer.from(keys.event(actor, next) + "\0"),
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
      if (response.succeeded) return { version: next, revision: Number(response.header.revision) };
      const [headRead, ours] = response.responses.map((r) => r.response_range.kvs);
      const current = headRead?.[0];
      const landed = ours?.length === values.length &&
        ours.every((kv, i) => kv.value.toString() === values[i]);
      if (landed) return { version: next, revision: Number(ours.at(-1)!.mod_revision) };
      throw new AppendConflictError(
        actor,
        expectedVersion,
        current === undefined ? 0 : Number(current.value.toString()),
        current === undefined ? 0 : Number(current.mod_revision),
      );
    },
    readActor(actor, after = 0) {
      const prefix = keys.actorEvents(actor);
      const start = after === 0 ? prefix : keys.event(actor, after) + "\0";
      return paged(
        { key: Buffer.from(start), range_end: Buffer.from(prefixEnd(prefix)) },
        `cannot read "${actor}"`,
      );
    },
    async currentRevision() {
      const response = await withRetry(
        "cannot read the revision",
        timeoutMs,
        (options) => etcd.kv.range({ key: Buffer.from(keys.events), count_only: true }, options),
      );
      return Number(response.header.revision);
    },
    readAll(atRevision) {
      return paged({
        key: Buffer.from(keys.events),
        range_end: Buffer.from(prefixEnd(keys.events)),
        revision: atRevision,
      }, `cannot read the log at revision ${atRevision}`);
    },
    watchFrom(revision, onEvent, onStatus = () => {}) {
      return watchPrefix(etcd, {
        prefix: keys.events,
        after: revision,
        timeoutMs,
        onKeyValue: (kv) => onEvent(toEvent(kv)),
        onStatus,
      });
    },
    close() {
      etcd.close();
    },
  };
}
