// Mermaid `stateDiagram-v2` text of a machine graph: pure, from the graph model alone.
// Mermaid ids allow only [A-Za-z0-9_], so states are renamed and keep their own name as label.
import { edgeLabel, type MachineGraph } from "./graph.ts";

// Words the state-diagram grammar reads as its own, so they cannot be ids.
const RESERVED = new Set(["state", "note", "class", "classdef", "style", "click", "default"]);

/** The graph as Mermaid `stateDiagram-v2` text, one statement a line. */
export function toMermaid(graph: MachineGraph): string {
  const ids = mermaidIds(graph);
  const id = (state: string) => ids.get(state) ?? "unknown";
  const lines = ["stateDiagram-v2"];
  const linked = new Set(graph.edges.flatMap((edge) => [edge.source, edge.target]));
  for (const state of graph.states) {
    if (id(state.id) !== state.id) lines.push(`  state "${text(state.id)}" as ${id(state.id)}`);
    else if (!linked.has(state.id) && state.id !== graph.initial) lines.push(`  ${state.id}`);
  }
  if (graph.initial !== null) lines.push(`  [*] --> ${id(graph.initial)}`);
  for (const edge of graph.edges) {
    lines.push(`  ${id(edge.source)} --> ${id(edge.target)} : ${text(edgeLabel(edge))}`);
  }
  for (const state of graph.states) {
    if (state.final) lines.push(`  ${id(state.id)} --> [*]`);
  }
  const transient = graph.states.filter((state) => state.transient);
  if (transient.length > 0) {
    lines.push("  classDef transient stroke-dasharray: 5 5");
    lines.push(`  class ${transient.map((state) => id(state.id)).join(",")} transient`);
  }
  return lines.join("\n") + "\n";
}

/** State id → a Mermaid id: cleaned, not a keyword, unique. */
function mermaidIds(graph: MachineGraph): Map<string, string> {
  const ids = new Map<string, string>();
  const taken = new Set<string>();
  for (const state of graph.states) {
    let base = state.id.replace(/[^A-Za-z0-9_]/g, "_") || "_";
    if (RESERVED.has(base.toLowerCase())) base = `${base}_`;
    let candidate = base;
    for (let n = 2; taken.has(candidate); n++) candidate = `${base}_${n}`;
    taken.add(candidate);
    ids.set(state.id, candidate);
  }
  return ids;
}

// Mermaid reads `#name;` as an entity; a quote or a line break would end the statement.
function text(value: string): string {
  return value.replace(/"/g, "#quot;").replace(/[\r\n]+/g, " ");
}
