// A watch over one etcd prefix that delivers every put and delete after a revision exactly once,
// in order, across reconnects to other members. etcd3 reconnects by itself but resumes from the
// last response's header revision + 1, which during a catch-up is the store's revision, not the
// last event sent; so we keep our own resume point and drop what a reconnect sends twice.
import { Buffer } from "node:buffer";
import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from "etcd3";
import { StoreUnavailableError } from "./etcd_errors.ts";

/** What became of a watch's connection; `failed` ends it (e.g. its start was compacted away). */
export type WatchStatus =
  | { type: "connected"; memberId: string }
  | { type: "disconnected"; reason: string }
  | { type: "failed"; reason: string };

/** A running watch; stop() (or `await using`) cancels it. */
export type EtcdWatch = {
  /** The etcd revision of the last event delivered (the start revision before any). */
  readonly revision: number;
  stop(): Promise<void>;
} & AsyncDisposable;

export type WatchOptions = {
  prefix: string;
  /** Deliver events of revisions after this one. */
  after: number;
  timeoutMs: number;
  /** Called synchronously for each put and delete (a deleted key's value is empty); never throws. */
  onKeyValue(kv: IKeyValue, deleted: boolean): void;
  onStatus(status: WatchStatus): void;
};

/** Starts the watch; resolves once a member accepted it, or rejects within `timeoutMs`. */
export async function watchPrefix(etcd: Etcd3, options: WatchOptions): Promise<EtcdWatch> {
  let last = options.after;
  const watcher = etcd.watch().prefix(options.prefix).startRevision(String(last + 1)).watcher();
  watcher.on("data", (response: IWatchResponse) => {
    // etcd never splits one revision's events over two responses, so "after `last`" is exact.
    let top = last;
    for (const event of response.events) {
      const revision = Number(event.kv.mod_revision);
      if (revision <= last) continue;
      options.onKeyValue(event.kv, event.type === "Delete");
      top = Math.max(top, revision);
    }
    last = top;
  });
  // grpc-js waits for a new connection's HTTP/2 settings without a timeout, so a reconnect that
  // lands on a frozen or cut-off member hangs for good; after `timeoutMs` we drop that stream
  // and etcd3 reconnects, to a member picked at random again.
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => {
      options.onStatus({ type: "disconnected", reason: `no answer in ${options.timeoutMs} ms` });
      arm();
      streamOf(watcher)?.cancel();
    }, options.timeoutMs);
  };
  watcher.on("disconnected", (error: Error) => {
    // Runs before etcd3's reconnect timer fires, so the new stream starts where we stopped.
    watcher.request.start_revision = String(last + 1);
    options.onStatus({ type: "disconnected", reason: firstLine(error) });
    arm();
  });
  watcher.on("connected", (response: IWatchResponse) => {
    clearTimeout(watchdog);
    options.onStatus({ type: "connected", memberId: response.header.member_id });
  });
  const started = Promise.withResolvers<void>();
  watcher.once("connected", () => started.resolve());
  let failed = false;
  watcher.on("error", (error: Error) => {
    failed = true;
    started.reject(error);
    void explain(etcd, options.prefix, last + 1, error)
      .then((reason) => options.onStatus({ type: "failed", reason }));
  });
  const what = `cannot watch from revision ${options.after}`;
  const timer = setTimeout(
    () => started.reject(new StoreUnavailableError(what, `no answer in ${options.timeoutMs} ms`)),
    options.timeoutMs,
  );
  try {
    await started.promise;
  } catch (error) {
    await watcher.cancel();
    if (!failed) throw error;
    const reason = await explain(etcd, options.prefix, last + 1, error as Error);
    throw new Error(`Cannot watch from revision ${options.after}: ${reason}`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
  const stop = () => {
    clearTimeout(watchdog);
    return bounded(watcher.cancel(), options.timeoutMs);
  };
  return {
    get revision() {
      return last;
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** The gRPC stream etcd3's watch manager holds for `watcher` (private in etcd3 1.1.2). */
function streamOf(watcher: Watcher): { cancel(): void } | undefined {
  const internals = watcher as unknown as { manager?: { stream?: { cancel(): void } } };
  return internals.manager?.stream;
}

/** Waits for `promise` at most `ms`: a cancel sent to a dead member is never answered. */
async function bounded(promise: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<void>((resolve) => timer = setTimeout(resolve, ms));
  try {
    await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Why etcd canceled a watch. etcd 3.4 cancels one whose start was compacted with only
 * compact_revision set, which etcd3 drops ("Watcher canceled: "): a read at that revision says it.
 */
async function explain(etcd: Etcd3, prefix: string, revision: number, error: Error) {
  if (error.message !== "Watcher canceled: ") return firstLine(error);
  const deadline = new Date(Date.now() + 2_000);
  return await etcd.kv.range({ key: Buffer.from(prefix), count_only: true, revision }, { deadline })
    .then(
      () => "etcd canceled the watch without a reason",
      (cause: Error) => `etcd canceled the watch: ${firstLine(cause)}`,
    );
}

function firstLine(error: Error): string {
  return error.message.split("\n")[0]!;
}
