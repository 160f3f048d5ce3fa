// Graphviz DOT text of a machine graph: pure, from the graph model alone. Every id is quoted,
// so state names need no cleaning here.
import { edgeLabel, type MachineGraph } from "./graph.ts";

const START = "[*]";

/** The graph as a DOT `digraph`: a point for the start, finals double, transients dashed. */
export function toDot(graph: MachineGraph): string {
  const lines = [
    `digraph ${quote(graph.kind)} {`,
    "  rankdir=TB;",
    '  node [shape=box, style=rounded, fontname="monospace", fontsize=12];',
    '  edge [fontname="monospace", fontsize=10];',
  ];
  if (graph.initial !== null) lines.push(`  ${quote(START)} [shape=point, width=0.15];`);
  for (const state of graph.states) {
    const attributes = [
      ...(state.final ? ["shape=doublecircle"] : []),
      ...(state.transient ? ['style="rounded,dashed"'] : []),
    ];
    lines.push(`  ${quote(state.id)}${list(attributes)};`);
  }
  if (graph.initial !== null) lines.push(`  ${quote(START)} -> ${quote(graph.initial)};`);
  for (const edge of graph.edges) {
    const label = `label=${quote(edgeLabel(edge))}`;
    lines.push(`  ${quote(edge.source)} -> ${quote(edge.target)}${list([label])};`);
  }
  lines.push("}");
  return lines.join("\n") + "\n";
}

function list(attributes: string[]): string {
  return attributes.length === 0 ? "" : ` [${attributes.join(", ")}]`;
}

function quote(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\r?\n/g, "\\n")}"`;
}
