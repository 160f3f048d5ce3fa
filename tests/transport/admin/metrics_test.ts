import assert from "node:assert/strict";
import {
  createHistogram,
  createMetrics,
  renderMetrics,
} from "../../../src/transport/admin/metrics.ts";
import { parsePrometheus, sampleValue } from "../../helpers/prometheus.ts";

Deno.test("createHistogram puts each value in the first bucket whose bound holds it", () => {
  const histogram = createHistogram([1, 2, 4]);
  for (const value of [0.5, 1, 1.5, 4, 9]) histogram.observe(value);
  assert.deepEqual([...histogram.counts], [2, 1, 1, 1]);
  assert.equal(histogram.count, 5);
  assert.equal(histogram.sum, 16);
});

Deno.test("renderMetrics writes Prometheus text that parses, with every family announced", () => {
  const metrics = createMetrics();
  metrics.call("VolumeDriver.Mount", 200, 0.0004);
  metrics.call("VolumeDriver.Mount", 500, 0.002);
  metrics.call('odd"name\\', 400, 0.1);
  metrics.syncSeconds.observe(0.0002);
  metrics.batchRecords.observe(3);
  metrics.start.replaySeconds = 1.5;
  metrics.start.snapshotSeq = 9;
  metrics.snapshots.seconds.get("delta")!.observe(0.003);
  metrics.snapshots.lastSeq = 15;
  metrics.snapshots.failures = 1;
  const text = renderMetrics(metrics, {
    actors: new Map([["volume", new Map([["mounted", 2], ["unmounted", 0]])]]),
    logBytes: 1234,
    logEvents: 17,
    uptimeSeconds: 3,
  });
  const { samples, types } = parsePrometheus(text);
  assert.equal(types.get("berth_calls_total"), "counter");
  assert.equal(types.get("berth_call_duration_seconds"), "histogram");
  const mount = { method: "VolumeDriver.Mount" };
  assert.equal(sampleValue(samples, "berth_calls_total", { ...mount, outcome: "ok" }), 1);
  assert.equal(sampleValue(samples, "berth_calls_total", { ...mount, outcome: "refused" }), 1);
  assert.equal(sampleValue(samples, "berth_call_duration_seconds_count", mount), 2);
  assert.equal(sampleValue(samples, "berth_calls_total", { outcome: "invalid" }), 1);
  assert.equal(sampleValue(samples, "berth_actors", { kind: "volume", state: "mounted" }), 2);
  assert.equal(sampleValue(samples, "berth_log_bytes"), 1234);
  assert.equal(sampleValue(samples, "berth_log_events"), 17);
  assert.equal(sampleValue(samples, "berth_log_fdatasync_duration_seconds_count"), 1);
  assert.equal(sampleValue(samples, "berth_log_batch_records_sum"), 3);
  assert.equal(sampleValue(samples, "berth_start_replay_seconds"), 1.5);
  assert.equal(sampleValue(samples, "berth_start_snapshot_sequence"), 9);
  assert.equal(types.get("berth_snapshot_duration_seconds"), "histogram");
  assert.equal(sampleValue(samples, "berth_snapshot_duration_seconds_count", { kind: "delta" }), 1);
  assert.equal(sampleValue(samples, "berth_snapshot_duration_seconds_count", { kind: "full" }), 0);
  assert.equal(sampleValue(samples, "berth_snapshot_last_sequence"), 15);
  assert.equal(sampleValue(samples, "berth_snapshot_failures_total"), 1);
  // This very process's memory: more than nothing, and the heap inside the resident set.
  const rss = sampleValue(samples, "process_resident_memory_bytes");
  const heap = sampleValue(samples, "berth_heap_used_bytes");
  assert.ok(heap > 1e6 && rss > heap, `rss ${rss}, heap ${heap}`);
});

Deno.test("parsePrometheus (the test's reader) refuses broken text", () => {
  assert.throws(() => parsePrometheus("x 1\n"), /before its # TYPE/);
  assert.throws(() => parsePrometheus("# TYPE x counter\nx{a=b} 1\n"), /not a sample|bad labels/);
  assert.throws(() => parsePrometheus("# TYPE x counter\nx 1"), /newline/);
  const notCumulative = '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\n' +
    "h_sum 1\nh_count 1\n";
  assert.throws(() => parsePrometheus(notCumulative), /not cumulative/);
});
