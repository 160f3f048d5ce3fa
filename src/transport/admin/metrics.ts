// Berth's metrics and their Prometheus text form. Counters and histograms are plain numbers
// updated on the call path (a Map lookup and a bucket search); the text is built only on scrape.

/** A cumulative histogram with fixed upper bounds, as Prometheus reads it. */
export type Histogram = {
  observe(value: number): void;
  readonly bounds: readonly number[];
  /** Observations per bucket (not cumulative), one more than bounds for +Inf. */
  readonly counts: Float64Array;
  readonly sum: number;
  readonly count: number;
};

export function createHistogram(bounds: readonly number[]): Histogram {
  const counts = new Float64Array(bounds.length + 1);
  let sum = 0;
  let count = 0;
  return {
    bounds,
    counts,
    get sum() {
      return sum;
    },
    get count() {
      return count;
    },
    observe(value) {
      let i = 0;
      while (i < bounds.length && value > bounds[i]!) i++;
      counts[i]! += 1;
      sum += value;
      count += 1;
    },
  };
}

/** Seconds, from 50 µs to 10 s: fdatasync is around 0.2 ms here, a Join around 10 ms. */
export const SECONDS_BUCKETS = [
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  1,
  2.5,
  10,
] as const;
/** Records per group-commit batch. */
export const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] as const;

/** How a call ended, from its HTTP status. */
export type CallOutcome = "ok" | "invalid" | "refused" | "unknown_method";

export function callOutcome(status: number): CallOutcome {
  if (status < 300) return "ok";
  if (status === 400) return "invalid";
  if (status === 404) return "unknown_method";
  return "refused";
}

/** Every metric Berth keeps while it runs. Gauges read at scrape time are passed to render. */
export type Metrics = {
  /** One Docker plugin call: `method` must come from the route table, never from the caller. */
  call(method: string, status: number, seconds: number): void;
  readonly appendSeconds: Histogram;
  readonly syncSeconds: Histogram;
  readonly batchRecords: Histogram;
  /** Seconds spent at start replaying the log and reconciling with the host. */
  start: {
    replaySeconds: number;
    reconcileSeconds: number;
    readyAt: number | null;
    /** The snapshot the start stood on (0: none) and how many records it replayed after it. */
    snapshotSeq: number;
    replayedRecords: number;
  };
  /** Snapshots taken while running. */
  snapshots: {
    /** Seconds each took, by kind (full or delta). */
    readonly seconds: Map<"full" | "delta", Histogram>;
    lastSeq: number;
    lastBytes: number;
    lastAt: number | null;
    failures: number;
  };
  readonly calls: ReadonlyMap<string, { counts: Map<CallOutcome, number>; seconds: Histogram }>;
  /** The plugin socket's connections open now and refused at the cap; set once it listens. */
  pluginConnections: (() => { open: number; refused: number }) | null;
};

export function createMetrics(): Metrics {
  const calls = new Map<string, { counts: Map<CallOutcome, number>; seconds: Histogram }>();
  return {
    calls,
    pluginConnections: null,
    appendSeconds: createHistogram(SECONDS_BUCKETS),
    syncSeconds: createHistogram(SECONDS_BUCKETS),
    batchRecords: createHistogram(BATCH_BUCKETS),
    start: {
      replaySeconds: 0,
      reconcileSeconds: 0,
      readyAt: null,
      snapshotSeq: 0,
      replayedRecords: 0,
    },
    snapshots: {
      seconds: new Map([
        ["full", createHistogram(SECONDS_BUCKETS)],
        ["delta", createHistogram(SECONDS_BUCKETS)],
      ]),
      lastSeq: 0,
      lastBytes: 0,
      lastAt: null,
      failures: 0,
    },
    call(method, status, seconds) {
      let entry = calls.get(method);
      if (!entry) {
        entry = { counts: new Map(), seconds: createHistogram(SECONDS_BUCKETS) };
        calls.set(method, entry);
      }
      const outcome = callOutcome(status);
      entry.counts.set(outcome, (entry.counts.get(outcome) ?? 0) + 1);
      entry.seconds.observe(seconds);
    },
  };
}

/** What is read at scrape time rather than counted. */
export type Gauges = {
  /** kind → state → how many actors stand there. */
  actors: Map<string, Map<string, number>>;
  logBytes: number;
  logEvents: number;
  uptimeSeconds: number;
};

/** The Prometheus text exposition (version 0.0.4) of `metrics` and `gauges`. */
export function renderMetrics(metrics: Metrics, gauges: Gauges): string {
  const lines: string[] = [];
  const family = (name: string, type: string, help: string) =>
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);

  family("berth_calls_total", "counter", "Docker plugin calls by method and outcome.");
  for (const [method, { counts }] of sorted(metrics.calls)) {
    for (const [outcome, count] of sorted(counts)) {
      lines.push(`berth_calls_total${labels({ method, outcome })} ${count}`);
    }
  }
  family("berth_call_duration_seconds", "histogram", "Time to answer a Docker plugin call.");
  for (const [method, { seconds }] of sorted(metrics.calls)) {
    histogramLines(lines, "berth_call_duration_seconds", seconds, { method });
  }
  family("berth_log_append_duration_seconds", "histogram", "From append to durable, per record.");
  histogramLines(lines, "berth_log_append_duration_seconds", metrics.appendSeconds);
  family("berth_log_fdatasync_duration_seconds", "histogram", "One fdatasync of the log.");
  histogramLines(lines, "berth_log_fdatasync_duration_seconds", metrics.syncSeconds);
  family("berth_log_batch_records", "histogram", "Records written by one group commit.");
  histogramLines(lines, "berth_log_batch_records", metrics.batchRecords);
  family("berth_actors", "gauge", "Live actors by kind and state.");
  for (const [kind, states] of sorted(gauges.actors)) {
    for (const [state, count] of sorted(states)) {
      lines.push(`berth_actors${labels({ kind, state })} ${count}`);
    }
  }
  family("berth_log_bytes", "gauge", "Size of the log segments.");
  lines.push(`berth_log_bytes ${gauges.logBytes}`);
  family("berth_log_events", "gauge", "Sequence number of the last logged event.");
  lines.push(`berth_log_events ${gauges.logEvents}`);
  family("berth_start_replay_seconds", "gauge", "Time the last start spent replaying the log.");
  lines.push(`berth_start_replay_seconds ${metrics.start.replaySeconds}`);
  family("berth_start_reconcile_seconds", "gauge", "Time the last start spent reconciling.");
  lines.push(`berth_start_reconcile_seconds ${metrics.start.reconcileSeconds}`);
  family("berth_start_snapshot_sequence", "gauge", "The snapshot the last start read (0: none).");
  lines.push(`berth_start_snapshot_sequence ${metrics.start.snapshotSeq}`);
  family("berth_start_replayed_records", "gauge", "Records the last start replayed after it.");
  lines.push(`berth_start_replayed_records ${metrics.start.replayedRecords}`);
  family("berth_snapshot_duration_seconds", "histogram", "Time to take one snapshot.");
  for (const [kind, histogram] of metrics.snapshots.seconds) {
    histogramLines(lines, "berth_snapshot_duration_seconds", histogram, { kind });
  }
  family("berth_snapshot_last_sequence", "gauge", "The record the newest snapshot covers.");
  lines.push(`berth_snapshot_last_sequence ${metrics.snapshots.lastSeq}`);
  family("berth_snapshot_last_bytes", "gauge", "Size of the newest snapshot file.");
  lines.push(`berth_snapshot_last_bytes ${metrics.snapshots.lastBytes}`);
  family("berth_snapshot_failures_total", "counter", "Snapshots that could not be written.");
  lines.push(`berth_snapshot_failures_total ${metrics.snapshots.failures}`);
  const connections = metrics.pluginConnections?.() ?? { open: 0, refused: 0 };
  family("berth_plugin_connections", "gauge", "Connections open on the plugin socket.");
  lines.push(`berth_plugin_connections ${connections.open}`);
  family(
    "berth_plugin_connections_refused_total",
    "counter",
    "Connections answered 503 because --max-connections were open.",
  );
  lines.push(`berth_plugin_connections_refused_total ${connections.refused}`);
  family("berth_uptime_seconds", "gauge", "Seconds since this Berth started.");
  lines.push(`berth_uptime_seconds ${gauges.uptimeSeconds}`);
  // Only a process started with --v8-flags=--expose-gc has gc(): the bench, to read live heap.
  (globalThis as { gc?: () => void }).gc?.();
  const memory = Deno.memoryUsage();
  family("process_resident_memory_bytes", "gauge", "Resident memory of the Berth process.");
  lines.push(`process_resident_memory_bytes ${memory.rss}`);
  family("berth_heap_used_bytes", "gauge", "JavaScript heap in use (V8), garbage included.");
  lines.push(`berth_heap_used_bytes ${memory.heapUsed}`);
  return lines.join("\n") + "\n";
}

function histogramLines(
  lines: string[],
  name: string,
  histogram: Histogram,
  base: Record<string, string> = {},
) {
  let cumulative = 0;
  histogram.bounds.forEach((bound, i) => {
    cumulative += histogram.counts[i]!;
    lines.push(`${name}_bucket${labels({ ...base, le: String(bound) })} ${cumulative}`);
  });
  cumulative += histogram.counts[histogram.bounds.length]!;
  lines.push(`${name}_bucket${labels({ ...base, le: "+Inf" })} ${cumulative}`);
  lines.push(`${name}_sum${labels(base)} ${histogram.sum}`);
  lines.push(`${name}_count${labels(base)} ${histogram.count}`);
}

function labels(values: Record<string, string>): string {
  const parts = Object.entries(values).map(([key, value]) => `${key}="${escapeLabel(value)}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function sorted<V>(map: ReadonlyMap<string, V>): [string, V][] {
  return [...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
