// The SVG drawing of a machine graph: dagre lays it out once per definition, our own pure functions
// write the markup. The inspector page only toggles classes and fills `.count` texts in it.
import dagre, { type Graph } from "@dagrejs/dagre";
import type { AnyStateMachine } from "xstate";
import { type KindName, KINDS } from "../../machines/mod.ts";
import {
  edgeLabel,
  type GraphEdge,
  type GraphState,
  type MachineGraph,
  machineGraph,
} from "./graph.ts";

export type Point = { x: number; y: number };
/** A box by its centre, as dagre gives it. */
export type Box = { x: number; y: number; width: number; height: number };
export type EdgeRoute = { points: Point[]; label: Box };
/** Where everything of a graph goes: states and edges by id, the start dot when there is one. */
export type GraphLayout = {
  width: number;
  height: number;
  start: { at: Point; points: Point[] } | null;
  states: Map<string, Box>;
  edges: Map<string, EdgeRoute>;
};

// Text is monospace so that its width can be known without a font: 0.6em a character.
const STATE_FONT = 13;
const LABEL_FONT = 11;
const STATE_HEIGHT = 40;
const STATE_PADDING = 14;
const COUNT_WIDTH = 24;
const LABEL_HEIGHT = 16;
const START_SIZE = 12;
const START = "[*]";

const STYLE = [
  ".machine{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}",
  ".machine .state rect{fill:#fff;stroke:#475569;stroke-width:1.5}",
  ".machine .state.transient rect{stroke-dasharray:5 3}",
  `.machine .state .label{font-size:${STATE_FONT}px;fill:#0f172a}`,
  `.machine .state .count{font-size:${STATE_FONT - 1}px;font-weight:600;fill:#2563eb}`,
  ".machine .edge path{fill:none;stroke:#64748b;stroke-width:1.3}",
  `.machine .edge-label{font-size:${LABEL_FONT}px;fill:#334155;paint-order:stroke;` +
  "stroke:#fff;stroke-width:3px;stroke-linejoin:round}",
  ".machine .start circle{fill:#0f172a}",
  ".machine .start path{fill:none;stroke:#0f172a;stroke-width:1.3}",
  ".machine marker path{fill:#64748b}",
].join("");

const drawings = new WeakMap<AnyStateMachine, string>();

/** The SVG of a kind's machine, laid out on first use and kept as long as its definition. */
export function machineSvg(kind: KindName): string {
  const machine = KINDS[kind].machine;
  let svg = drawings.get(machine);
  if (svg === undefined) {
    const graph = machineGraph(kind);
    svg = renderSvg(graph, layoutGraph(graph));
    drawings.set(machine, svg);
  }
  return svg;
}

/** Lays a graph out top to bottom with dagre; self-loops get room beside their state. */
export function layoutGraph(graph: MachineGraph): GraphLayout {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: "TB", nodesep: 40, ranksep: 50, edgesep: 16, marginx: 16, marginy: 16 });
  for (const state of graph.states) {
    g.setNode(state.id, { width: stateWidth(state.id), height: STATE_HEIGHT });
  }
  if (graph.initial !== null) {
    g.setNode(START, { width: START_SIZE, height: START_SIZE });
    g.setEdge(START, graph.initial, {}, START);
  }
  for (const edge of graph.edges) {
    const size = { width: textWidth(edgeLabel(edge), LABEL_FONT) + 8, height: LABEL_HEIGHT };
    g.setEdge(edge.source, edge.target, { ...size, labelpos: "c" }, edge.id);
  }
  dagre.layout(g);
  const states = new Map<string, Box>();
  for (const state of graph.states) states.set(state.id, boxOf(g.node(state.id)));
  const { width = 0, height = 0 } = g.graph();
  const start = startOf(g, graph.initial);
  return { width, height, start, states, edges: routesOf(g, graph.edges, states) };
}

function routesOf(g: Graph, edges: GraphEdge[], states: Map<string, Box>) {
  const routes = new Map<string, EdgeRoute>();
  const loops = new Map<string, number>();
  for (const edge of edges) {
    const route = g.edge({ v: edge.source, w: edge.target, name: edge.id });
    const label = boxOf(route);
    if (!edge.selfLoop) {
      routes.set(edge.id, { points: route.points ?? [], label });
      continue;
    }
    const nth = loops.get(edge.source) ?? 0;
    loops.set(edge.source, nth + 1);
    routes.set(edge.id, { points: loopPoints(states.get(edge.source), label, nth), label });
  }
  return routes;
}

function startOf(g: Graph, initial: string | null): GraphLayout["start"] {
  if (initial === null) return null;
  const { x = 0, y = 0 } = g.node(START);
  return { at: { x, y }, points: g.edge({ v: START, w: initial, name: START }).points ?? [] };
}

function boxOf(value: { x?: number; y?: number; width?: number; height?: number }): Box {
  return { x: value.x ?? 0, y: value.y ?? 0, width: value.width ?? 0, height: value.height ?? 0 };
}

/**
 * A loop out of a state's right side to just before its label and back. dagre keeps the room
 * (a dummy node the size of the label, right of the state) but draws self-loops as a knot, so the
 * loop is ours; each further loop of one state spreads wider so it passes around earlier labels.
 */
function loopPoints(state: Box | undefined, label: Box, nth: number): Point[] {
  if (state === undefined) return [];
  const right = state.x + state.width / 2;
  const tip = Math.max(label.x - label.width / 2 - 2, right + 16);
  const spread = Math.min(7 + 7 * nth, state.height / 2 - 2);
  return [
    { x: right, y: state.y - spread },
    { x: tip, y: state.y - spread },
    { x: tip, y: state.y + spread },
    { x: right, y: state.y + spread },
  ];
}

function stateWidth(id: string): number {
  return Math.max(96, textWidth(id, STATE_FONT) + 2 * STATE_PADDING + COUNT_WIDTH);
}

function textWidth(text: string, fontSize: number): number {
  return text.length * fontSize * 0.6;
}

/** The SVG markup of a laid-out graph: pure, byte-identical for the same input. */
export function renderSvg(graph: MachineGraph, layout: GraphLayout): string {
  const marker = `berth-arrow-${graph.kind.replace(/[^A-Za-z0-9_-]/g, "_")}`;
  const lines = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="machine" data-kind="${escape(graph.kind)}" ` +
    `viewBox="0 0 ${num(layout.width)} ${num(layout.height)}" ` +
    `width="${num(layout.width)}" height="${num(layout.height)}">`,
    `<title>${escape(`${graph.kind} machine`)}</title>`,
    `<style>${STYLE}</style>`,
    `<defs><marker id="${marker}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" ` +
    `markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z"/></marker></defs>`,
  ];
  if (layout.start && graph.initial !== null) {
    const { at, points } = layout.start;
    lines.push(
      `<g class="start" data-target="${escape(graph.initial)}">` +
        `<circle cx="${num(at.x)}" cy="${num(at.y)}" r="${START_SIZE / 2}"/>` +
        `<path d="${pathData(points)}" marker-end="url(#${marker})"/></g>`,
    );
  }
  for (const edge of graph.edges) {
    const route = layout.edges.get(edge.id);
    if (route) lines.push(edgeSvg(edge, route, marker));
  }
  for (const state of graph.states) {
    const box = layout.states.get(state.id);
    if (box) lines.push(stateSvg(state, box));
  }
  lines.push("</svg>");
  return lines.join("\n") + "\n";
}

function edgeSvg(edge: GraphEdge, route: EdgeRoute, marker: string): string {
  const { label } = route;
  return `<g class="edge" data-event="${escape(edge.event)}" data-source="${
    escape(edge.source)
  }" ` +
    `data-target="${escape(edge.target)}" data-edge="${escape(edge.id)}">` +
    `<path d="${pathData(route.points)}" marker-end="url(#${marker})"/>` +
    `<text class="edge-label" x="${num(label.x)}" y="${num(label.y + LABEL_FONT * 0.35)}" ` +
    `text-anchor="middle">${escape(edgeLabel(edge))}</text></g>`;
}

function stateSvg(state: GraphState, box: Box): string {
  const classes = ["state", state.initial && "initial", state.transient && "transient"];
  classes.push(state.final && "final");
  const left = box.x - box.width / 2;
  const top = box.y - box.height / 2;
  const rects = [rect(left, top, box.width, box.height, 8)];
  if (state.final) rects.push(rect(left + 4, top + 4, box.width - 8, box.height - 8, 5));
  const baseline = num(box.y + STATE_FONT * 0.35);
  const id = escape(state.id);
  return `<g class="${classes.filter(Boolean).join(" ")}" data-state="${id}">${rects.join("")}` +
    `<text class="label" x="${num(box.x - COUNT_WIDTH / 2)}" y="${baseline}" ` +
    `text-anchor="middle">${id}</text>` +
    `<text class="count" data-count-for="${id}" x="${num(left + box.width - 10)}" ` +
    `y="${baseline}" text-anchor="end"></text></g>`;
}

function rect(x: number, y: number, width: number, height: number, radius: number): string {
  return `<rect x="${num(x)}" y="${num(y)}" width="${num(width)}" height="${num(height)}" ` +
    `rx="${radius}"/>`;
}

/**
 * The route's polyline with its corners rounded. Splines through dagre's points overshoot where
 * they crowd; this one stays on the route, so it still crosses each label's middle.
 */
function pathData(points: readonly Point[]): string {
  const at = (p: Point) => `${num(p.x)},${num(p.y)}`;
  const [first] = points;
  const last = points[points.length - 1];
  if (first === undefined || last === undefined) return "";
  let d = `M${at(first)}`;
  for (let i = 1; i < points.length - 1; i++) {
    const [before, corner, after] = [points[i - 1]!, points[i]!, points[i + 1]!];
    d += `L${at(toward(corner, before))}Q${at(corner)} ${at(toward(corner, after))}`;
  }
  return points.length > 1 ? `${d}L${at(last)}` : d;
}

const CORNER_RADIUS = 12;

/** The point on the way from `corner` to `other`, a corner radius away (half way at most). */
function toward(corner: Point, other: Point): Point {
  const length = Math.hypot(other.x - corner.x, other.y - corner.y);
  if (length === 0) return corner;
  const share = Math.min(CORNER_RADIUS, length / 2) / length;
  return { x: corner.x + (other.x - corner.x) * share, y: corner.y + (other.y - corner.y) * share };
}

/** One decimal at most, no `-0`: the same numbers always print the same. */
function num(value: number): string {
  const rounded = Math.round(value * 10) / 10;
  return String(rounded === 0 ? 0 : rounded);
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}
