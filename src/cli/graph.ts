// `berth graph`: draws a machine from its definition, as SVG, Mermaid, DOT or the JSON model, to
// stdout. Reads no state dir and talks to no running Berth.
import { isKindName, type KindName, KINDS } from "../../machines/mod.ts";
import { toDot } from "../inspect/dot.ts";
import { machineGraph } from "../inspect/graph.ts";
import { toMermaid } from "../inspect/mermaid.ts";
import { machineSvg } from "../inspect/svg.ts";
import { type Command, out, parseFlags, UsageError } from "./_command.ts";

const KIND_NAMES = Object.keys(KINDS) as KindName[];

const FORMATS = {
  svg: (kind: KindName) => machineSvg(kind),
  mermaid: (kind: KindName) => toMermaid(machineGraph(kind)),
  dot: (kind: KindName) => toDot(machineGraph(kind)),
  json: (kind: KindName) => `${JSON.stringify(machineGraph(kind), null, 2)}\n`,
} satisfies Record<string, (kind: KindName) => string>;

type Format = keyof typeof FORMATS;

const FORMAT_NAMES = Object.keys(FORMATS) as Format[];

const HELP = `Usage: berth graph <kind> [options]

Draws the state machine of one kind of entity from its definition: every state (transient ones,
where an effect is in flight, dashed) and every transition, labelled "event [guard]".

Kinds:    ${KIND_NAMES.join(", ")}
Formats:  svg      the drawing the inspector shows (the default)
          mermaid  stateDiagram-v2 text
          dot      Graphviz text
          json     the graph model: states and edges

Options:
  --format FORMAT   one of ${FORMAT_NAMES.join(", ")} (default: svg)
  -h, --help        show this help

Example:
  berth graph volume --format svg > volume.svg
`;

function isFormat(value: string): value is Format {
  return Object.hasOwn(FORMATS, value);
}

function graph(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { format: { type: "string" } }, 1);
  const [kind] = positionals;
  const kinds = KIND_NAMES.join(", ");
  if (kind === undefined) throw new UsageError(`a kind is needed: one of ${kinds}`);
  if (!isKindName(kind)) {
    throw new UsageError(`unknown kind "${kind}": choose one of ${kinds}`);
  }
  const format = values.format ?? "svg";
  if (!isFormat(format)) {
    throw new UsageError(`unknown format "${format}": choose one of ${FORMAT_NAMES.join(", ")}`);
  }
  out(FORMATS[format](kind));
  return Promise.resolve(0);
}

export const graphCommand: Command = {
  name: "graph",
  summary: "draw a machine from its definition (svg, mermaid, dot, json)",
  help: HELP,
  run: graph,
};
