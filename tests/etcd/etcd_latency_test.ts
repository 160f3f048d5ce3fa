// Measures, never asserts: append latency at 1 and 16 concurrent appenders, and watch lag from an
// append on one client to the event on another client's watch, on the real three-member cluster
// (loopback, real fsync). Figures go to stderr for the record.
import { createEtcdClient } from "../../src/log/etcd_client.ts";
import { skipUnless } from "../helpers/skip.ts";
import { etcdMissing, startEtcdCluster } from "./_etcd_cluster.ts";

const ignore = skipUnless("etcd latency", etcdMissing());

function percentiles(label: string, samples: number[]): string {
  const sorted = samples.toSorted((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return `${label}: n=${sorted.length} p50=${at(0.5).toFixed(1)} ms p99=${
    at(0.99).toFixed(1)
  } ms ` +
    `max=${sorted.at(-1)!.toFixed(1)} ms`;
}

function report(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`${line}\n`));
}

/**
 * Each of `writers` appenders makes `each` appends, one at a time, to its own actor; `append` is
 * given the actor's head (its last append's revision) and resolves to the new one.
 */
async function appendLatencies(
  append: (actor: string, i: number, head: number) => Promise<{ revision: number }>,
  writers: number,
  each: number,
): Promise<number[]> {
  const samples: number[] = [];
  await Promise.all(Array.from({ length: writers }, async (_, w) => {
    let head = 0;
    for (let i = 0; i < each; i++) {
      const started = performance.now();
      head = (await append(`volume/w${w}`, i, head)).revision;
      samples.push(performance.now() - started);
    }
  }));
  return samples;
}

Deno.test({
  name: "etcd client latency: appends at 1 and 16 writers, watch lag",
  ignore,
  async fn() {
    await using cluster = await startEtcdCluster();
    const a = createEtcdClient({ endpoints: cluster.endpoints, cluster: "lat" });
    const b = createEtcdClient({ endpoints: cluster.endpoints, cluster: "lat" });
    try {
      const record = (actor: string, i: number) =>
        JSON.stringify({ actor, type: "volume.mount", at: Date.now(), data: { mountId: `m${i}` } });
      await appendLatencies(
        (actor, i, head) => a.appendIfHead(`warm/${actor}`, head, [record(actor, i)]),
        4,
        10,
      );

      const one = await appendLatencies(
        (actor, i, head) => a.appendIfHead(actor, head, [record(actor, i)]),
        1,
        200,
      );
      report(percentiles("append, 1 writer", one));
      const sixteen = await appendLatencies(
        (actor, i, head) => a.appendIfHead(`c16/${actor}`, head, [record(actor, i)]),
        16,
        25,
      );
      report(percentiles("append, 16 writers", sixteen));

      const sent = new Map<string, { started: number; acked: number }>();
      const fromSend: number[] = [];
      const fromAck: number[] = [];
      const arrived = new Map<string, number>();
      await using _watch = await b.watchFrom(await b.currentRevision(), (change) => {
        if (change.type === "event") arrived.set(change.event.value, performance.now());
      });
      let head = 0;
      for (let i = 0; i < 200; i++) {
        const value = record("volume/lag", i);
        const started = performance.now();
        head = (await a.appendIfHead("volume/lag", head, [value])).revision;
        sent.set(value, { started, acked: performance.now() });
      }
      const deadline = Date.now() + 10_000;
      while (arrived.size < sent.size && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      for (const [value, { started, acked }] of sent) {
        const at = arrived.get(value);
        if (at === undefined) continue;
        fromSend.push(at - started);
        fromAck.push(at - acked);
      }
      report(percentiles("watch lag, append sent on A -> event on B", fromSend));
      report(percentiles("watch lag, append acked on A -> event on B (may be < 0)", fromAck));
    } finally {
      a.close();
      b.close();
    }
  },
});
