// The graph model of a machine definition: states and labelled transitions as plain JSON, read
// from the machine itself through `toDirectedGraph`. Knows machines only; draws nothing.
import type { AnyStateMachine, AnyStateNode, AnyTransitionDefinition } from "xstate";
import { type DirectedGraphNode, toDirectedGraph } from "xstate/graph";
import { type KindName, KINDS } from "../../machines/mod.ts";

/** One state; `id` is its path from the root, dotted when nested (`mounted`, `a.b`). */
export type GraphState = {
  id: string;
  initial: boolean;
  transient: boolean;
  final: boolean;
};

/** One transition to one target; actions-only transitions are self-loops. */
export type GraphEdge = {
  id: string;
  source: string;
  target: string;
  /** The event type as the machine sees it ("" for an eventless `always` transition). */
  event: string;
  guard: string | null;
  actions: string[];
  selfLoop: boolean;
};

/** A machine definition as drawable, JSON-able data, in definition order. */
export type MachineGraph = {
  kind: string;
  id: string;
  initial: string | null;
  states: GraphState[];
  edges: GraphEdge[];
};

/** The graph of a registered kind's machine. */
export function machineGraph(kind: KindName): MachineGraph {
  const { machine, transient } = KINDS[kind];
  return graphFromMachine(machine, { kind, transient });
}

/** The graph of any machine; `transient` names the states where an effect is in flight. */
export function graphFromMachine(
  machine: AnyStateMachine,
  options: { kind: string; transient?: readonly string[] },
): MachineGraph {
  const root = toDirectedGraph(machine);
  const transient = new Set(options.transient ?? []);
  const states: GraphState[] = [];
  const edges: GraphEdge[] = [];
  const visit = (node: DirectedGraphNode) => {
    for (const child of node.children) {
      states.push(stateOf(child.stateNode, transient));
      edges.push(...edgesOf(child));
      visit(child);
    }
  };
  visit(root);
  edges.push(...rootEdges(root, states));
  const initial = root.stateNode.initial?.target[0];
  return {
    kind: options.kind,
    id: machine.id,
    initial: initial ? pathOf(initial) : null,
    states,
    edges,
  };
}

function pathOf(node: AnyStateNode): string {
  return node.path.join(".");
}

function stateOf(node: AnyStateNode, transient: ReadonlySet<string>): GraphState {
  const id = pathOf(node);
  const parentInitial = node.parent?.initial?.target[0];
  return {
    id,
    initial: parentInitial === node,
    transient: transient.has(id),
    final: node.type === "final",
  };
}

function edgesOf(node: DirectedGraphNode): GraphEdge[] {
  const source = pathOf(node.stateNode);
  // xstate's ids end in `:transition:target` after the node's own id, which may be custom.
  const edges = node.edges.map((edge) =>
    edgeOf(`${source}:${edge.id.split(":").slice(-2).join(":")}`, edge.transition, edge.target)
  );
  // `toDirectedGraph` leaves out eventless transitions; they are transitions all the same.
  const always: AnyTransitionDefinition[] = node.stateNode.always ?? [];
  always.forEach((transition, index) => {
    const targets = transition.target ?? [node.stateNode];
    targets.forEach((target, targetIndex) => {
      edges.push(edgeOf(`${source}:always:${index}:${targetIndex}`, transition, target));
    });
  });
  return edges;
}

function edgeOf(
  id: string,
  transition: AnyTransitionDefinition,
  targetNode: AnyStateNode,
): GraphEdge {
  const source = pathOf(transition.source);
  const target = transition.target === undefined ? source : pathOf(targetNode);
  return {
    id,
    source,
    target,
    event: transition.eventType,
    guard: transition.guard === undefined ? null : guardName(transition.guard),
    actions: transition.actions.map(actionName),
    selfLoop: source === target,
  };
}

/** Transitions on the machine's root answer in every state: drawn from each top-level one. */
function rootEdges(root: DirectedGraphNode, states: GraphState[]): GraphEdge[] {
  const sources = states.filter((state) => !state.id.includes(".") && !state.final);
  return edgesOf(root).flatMap((edge) =>
    sources.map((state) => {
      const target = edge.selfLoop ? state.id : edge.target;
      return {
        ...edge,
        id: `${state.id}:root${edge.id}`,
        source: state.id,
        target,
        selfLoop: state.id === target,
      };
    })
  );
}

/** A guard as it reads in a drawing: its name, or its combinator with the names inside. */
export function guardName(guard: unknown): string {
  if (typeof guard === "string") return guard;
  if (typeof guard === "function") {
    const combined = guard as { guards?: unknown[]; stateValue?: unknown };
    if (Array.isArray(combined.guards)) {
      return `${guard.name}(${combined.guards.map(guardName).join(", ")})`;
    }
    if (combined.stateValue !== undefined) {
      const value = combined.stateValue;
      return `${guard.name}(${typeof value === "string" ? value : JSON.stringify(value)})`;
    }
    // An arrow written inline in a config takes the property's name, which says nothing.
    return guard.name && guard.name !== "guard" ? guard.name : "inline";
  }
  if (typeof guard === "object" && guard !== null && "type" in guard) {
    return String(guard.type);
  }
  return "inline";
}

function actionName(action: unknown): string {
  if (typeof action === "string") return action;
  if (typeof action === "object" && action !== null && "type" in action) {
    return String(action.type);
  }
  if (typeof action === "function") {
    const type = (action as { type?: unknown }).type;
    return typeof type === "string" ? type : action.name || "inline";
  }
  return "inline";
}

const AFTER_REGEXP = /^xstate\.after\.([^.]+)\./;
const DONE_ACTOR = "xstate.done.actor.";
const ERROR_ACTOR = "xstate.error.actor.";
const DONE_STATE = "xstate.done.state.";

/** A built-in event as a person would say it: `after 500ms`, `done: fetch`; others as they are. */
export function eventLabel(event: string): string {
  const after = AFTER_REGEXP.exec(event);
  if (after) return `after ${after[1]}${/^\d+$/.test(after[1]!) ? "ms" : ""}`;
  if (event.startsWith(DONE_ACTOR)) return `done: ${event.slice(DONE_ACTOR.length)}`;
  if (event.startsWith(ERROR_ACTOR)) return `error: ${event.slice(ERROR_ACTOR.length)}`;
  if (event.startsWith(DONE_STATE)) return "done";
  if (event === "") return "always";
  return event;
}

/** What an edge says in every drawing: `event [guard]`. */
export function edgeLabel(edge: GraphEdge): string {
  const event = eventLabel(edge.event);
  return edge.guard === null ? event : `${event} [${edge.guard}]`;
}
