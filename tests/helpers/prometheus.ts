// A strict reader of the Prometheus text format (0.0.4), for tests: every sample line must belong
// to a family announced by # TYPE, and histograms must be cumulative with +Inf equal to _count.

export type Sample = { name: string; labels: Record<string, string>; value: number };

const SAMPLE_REGEXP = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/;
const LABEL_REGEXP = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;

/** Parses `text` or throws naming the first bad line. */
export function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  if (!text.endsWith("\n")) throw new Error("exposition must end with a newline");
  for (const [index, line] of text.slice(0, -1).split("\n").entries()) {
    const where = `line ${index + 1}: ${line}`;
    if (line.startsWith("# TYPE ")) {
      const [, , name, type] = line.split(" ");
      if (!name || !["counter", "gauge", "histogram", "summary", "untyped"].includes(type ?? "")) {
        throw new Error(`bad TYPE, ${where}`);
      }
      types.set(name, type!);
      continue;
    }
    if (line.startsWith("# HELP ") || line === "") continue;
    const match = SAMPLE_REGEXP.exec(line);
    if (!match) throw new Error(`not a sample, ${where}`);
    const labels: Record<string, string> = {};
    const body = match[3] ?? "";
    LABEL_REGEXP.lastIndex = 0;
    while (LABEL_REGEXP.lastIndex < body.length) {
      const label = LABEL_REGEXP.exec(body);
      if (!label) throw new Error(`bad labels, ${where}`);
      labels[label[1]!] = label[2]!;
    }
    const name = match[1]!;
    const family = name.replace(/_(bucket|sum|count)$/, "");
    if (!types.has(name) && types.get(family) !== "histogram") {
      throw new Error(`sample before its # TYPE, ${where}`);
    }
    samples.push({ name, labels, value: Number(match[4]) });
  }
  checkHistograms(samples, types);
  return { samples, types };
}

function checkHistograms(samples: Sample[], types: Map<string, string>) {
  for (const [family, type] of types) {
    if (type !== "histogram") continue;
    const series = new Map<string, number[]>();
    for (const sample of samples.filter((s) => s.name === `${family}_bucket`)) {
      const { le: _le, ...rest } = sample.labels;
      const key = JSON.stringify(rest);
      series.set(key, [...(series.get(key) ?? []), sample.value]);
    }
    for (const [key, buckets] of series) {
      for (let i = 1; i < buckets.length; i++) {
        if (buckets[i]! < buckets[i - 1]!) throw new Error(`${family}${key} is not cumulative`);
      }
      const count = samples.find((s) =>
        s.name === `${family}_count` &&
        JSON.stringify(s.labels) === key
      );
      if (count?.value !== buckets.at(-1)) throw new Error(`${family}${key}: +Inf != _count`);
    }
  }
}

/** The value of the one sample named `name` whose labels include `labels`; 0 when absent. */
export function sampleValue(
  samples: Sample[],
  name: string,
  labels: Record<string, string> = {},
): number {
  const found = samples.filter((sample) =>
    sample.name === name &&
    Object.entries(labels).every(([key, value]) => sample.labels[key] === value)
  );
  return found.reduce((sum, sample) => sum + sample.value, 0);
}
