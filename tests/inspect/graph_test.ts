// Machine drawings: golden files of every format for every kind, and proof that they follow the
// definitions: every transition drawn, a change of definition changes every drawing, Mermaid parses.
import assert from "node:assert/strict";
import DOMPurify from "dompurify";
import mermaid from "mermaid";
import { and, type AnyStateMachine, createMachine, fromPromise, not, stateIn } from "xstate";
import { type KindName, KINDS } from "../../machines/mod.ts";
import { volumeMachine } from "../../machines/volume_machine.ts";
import { toDot } from "../../src/inspect/dot.ts";
import {
  edgeLabel,
  graphFromMachine,
  type MachineGraph,
  machineGraph,
} from "../../src/inspect/graph.ts";
import { toMermaid } from "../../src/inspect/mermaid.ts";
import { layoutGraph, machineSvg, renderSvg } from "../../src/inspect/svg.ts";

const KIND_NAMES = Object.keys(KINDS) as KindName[];
const GOLDEN = new URL("./golden/", import.meta.url);
const UPDATE = Deno.env.get("UPDATE_GOLDEN") === "1";

function drawings(graph: MachineGraph) {
  return {
    json: `${JSON.stringify(graph, null, 2)}\n`,
    mmd: toMermaid(graph),
    dot: toDot(graph),
    svg: renderSvg(graph, layoutGraph(graph)),
  };
}

/** A golden file's text: exactly what the program writes (deno.json keeps `deno fmt` off them). */
function readGolden(name: string): Promise<string> {
  return Deno.readTextFile(new URL(name, GOLDEN));
}

Deno.test("machine drawings match their golden files (UPDATE_GOLDEN=1 rewrites them)", async (t) => {
  for (const kind of KIND_NAMES) {
    await t.step(kind, async () => {
      const made = { ...drawings(machineGraph(kind)), svg: machineSvg(kind) };
      for (const [extension, text] of Object.entries(made)) {
        const name = `${kind}.${extension}`;
        if (UPDATE) {
          await Deno.writeTextFile(
            new URL(name, GOLDEN),
            text,
          );
        }
        assert.equal(text, await readGolden(name), `${name} differs`);
      }
    });
  }
});

type TransitionConfig = string | { target?: string; guard?: unknown; actions?: string | string[] };

function configTransitions(machine: AnyStateMachine) {
  const states = (machine.config.states ?? {}) as Record<string, { on?: object }>;
  return Object.entries(states).flatMap(([source, state]) =>
    Object.entries(state.on ?? {}).flatMap(([event, value]) =>
      ([] as TransitionConfig[]).concat(value).map((one) => {
        const transition = typeof one === "string" ? { target: one } : one;
        const target = transition.target ?? source;
        const guard = transition.guard === undefined ? null : String(transition.guard);
        const actions = ([] as string[]).concat(transition.actions ?? []);
        return { source, target, event, guard, actions, selfLoop: source === target };
      })
    )
  );
}

Deno.test("machineGraph draws every transition of every definition, flagged as defined", async (t) => {
  for (const kind of KIND_NAMES) {
    await t.step(kind, () => {
      const { machine, transient } = KINDS[kind];
      const graph = machineGraph(kind);
      const expected = configTransitions(machine);
      assert.ok(expected.length > 0);
      assert.equal(graph.edges.length, expected.length);
      assert.deepEqual(graph.edges.map(({ id: _id, ...edge }) => edge), expected);
      const states = Object.entries(machine.config.states ?? {});
      assert.deepEqual(
        graph.states,
        states.map(([id, state]) => ({
          id,
          initial: id === machine.config.initial,
          transient: (transient as readonly string[]).includes(id),
          final: (state as { type?: string }).type === "final",
        })),
      );
      assert.equal(graph.initial, machine.config.initial);
      assert.equal(new Set(graph.edges.map((edge) => edge.id)).size, graph.edges.length);
    });
  }
  await t.step("actions-only transitions are self-loops", () => {
    const edge = machineGraph("volume").edges.find((one) => one.id === "mounted:0:0");
    assert.deepEqual([edge?.target, edge?.selfLoop, edge?.actions], ["mounted", true, [
      "addMount",
    ]]);
  });
});

Deno.test("a state added to a copy of volumeMachine shows in every drawing", () => {
  const config = volumeMachine.config;
  const states = config.states!;
  const copy = createMachine(
    {
      ...config,
      states: {
        ...states,
        unmounted: { on: { ...states.unmounted!.on, "volume.archive": { target: "archived" } } },
        archived: { type: "final" },
      },
    } as typeof config,
  );
  const options = { kind: "volume", transient: KINDS.volume.transient };
  const before = drawings(machineGraph("volume"));
  const after = drawings(graphFromMachine(copy, options));
  for (const format of ["json", "mmd", "dot", "svg"] as const) {
    assert.notEqual(after[format], before[format], format);
  }
  const graph = JSON.parse(after.json) as MachineGraph;
  assert.deepEqual(graph.states.at(-1), {
    id: "archived",
    initial: false,
    transient: false,
    final: true,
  });
  assert.ok(graph.edges.some((edge) => edge.target === "archived" && edge.source === "unmounted"));
  assert.match(after.mmd, /^ {2}unmounted --> archived : volume\.archive$/m);
  assert.match(after.mmd, /^ {2}archived --> \[\*\]$/m);
  assert.match(after.dot, /^ {2}"archived" \[shape=doublecircle\];$/m);
  assert.match(after.svg, /<g class="state final" data-state="archived">/);
  assert.match(after.svg, /data-source="unmounted" data-target="archived"/);
});

// DOMPurify needs a DOM, which Deno lacks; Mermaid's parser calls it only to clean label text.
// Both come from the one npm copy, so this object is the one Mermaid holds.
const purify = DOMPurify as unknown as Record<string, unknown>;
purify.sanitize ??= (text: string) => text;
purify.addHook ??= () => {};

async function parseMermaid(text: string): Promise<string> {
  const result = await mermaid.parse(text);
  return result ? result.diagramType : "";
}

Deno.test("toMermaid writes text that Mermaid's own parser accepts", async (t) => {
  for (const kind of KIND_NAMES) {
    await t.step(kind, async () => {
      assert.equal(await parseMermaid(toMermaid(machineGraph(kind))), "stateDiagram");
    });
  }
  await t.step("the parse is real: broken text is refused", async () => {
    const good = toMermaid(machineGraph("volume"));
    await assert.rejects(
      parseMermaid(good.replace(" --> creating", " -> creating")),
      /Parse error/,
    );
    await assert.rejects(parseMermaid("stateDiagram-v2\n  a-b --> c\n"), /Parse error/);
  });
  await t.step("state names Mermaid cannot take are renamed and kept as labels", async () => {
    const text = toMermaid(graphFromMachine(oddMachine(), { kind: "odd" }));
    assert.match(text, /^ {2}state "busy-one" as busy_one$/m);
    assert.match(text, /^ {2}state "nest\.inner" as nest_inner$/m);
    assert.match(text, /^ {2}state "state" as state_$/m);
    assert.equal(await parseMermaid(text), "stateDiagram");
  });
});

/** Everything the four machines do not use yet: nesting, delays, invokes, eventless, combinators. */
function oddMachine() {
  return createMachine({
    id: "odd",
    initial: "idle",
    on: { reset: ".idle" },
    states: {
      idle: {
        after: { 500: "busy-one" },
        on: {
          go: { guard: and(["isA", not("isB")]), target: "busy-one" },
          deep: { guard: { type: "isC", params: { n: 1 } }, target: "nest.inner" },
          here: { guard: stateIn("idle"), actions: "note" },
          "go.now": { guard: () => true, target: "state" },
        },
      },
      "busy-one": {
        invoke: { id: "fetch", src: fromPromise(() => Promise.resolve(1)), onDone: "nest" },
        always: [{ guard: "isReady", target: "done" }],
      },
      nest: {
        initial: "inner",
        onDone: "done",
        states: { inner: { on: { finish: "fin" } }, fin: { type: "final" } },
      },
      state: {},
      done: { type: "final" },
    },
  });
}

Deno.test("graphFromMachine names built-in events and guards, and copes with nesting", () => {
  const graph = graphFromMachine(oddMachine(), { kind: "odd", transient: ["busy-one"] });
  const ids = graph.states.map((state) => state.id).join(" ");
  assert.equal(ids, "idle busy-one nest nest.inner nest.fin state done");
  assert.ok(graph.states.find((state) => state.id === "nest.inner")!.initial);
  const labels = graph.edges.map((edge) => `${edge.source} > ${edge.target}: ${edgeLabel(edge)}`);
  for (
    const line of [
      "idle > busy-one: go [and(isA, not(isB))]",
      "idle > nest.inner: deep [isC]",
      "idle > idle: here [stateIn(idle)]",
      "idle > state: go.now [inline]",
      "idle > busy-one: after 500ms",
      "busy-one > nest: done: fetch",
      "busy-one > done: always [isReady]",
      "nest > done: done",
      "nest.inner > nest.fin: finish",
      "busy-one > idle: reset",
    ]
  ) assert.ok(labels.includes(line), `${line} in\n${labels.join("\n")}`);
  const svg = renderSvg(graph, layoutGraph(graph));
  assert.match(svg, /<g class="state initial" data-state="nest\.inner">/);
  assert.match(toDot(graph), /"nest\.inner" -> "nest\.fin" \[label="finish"\];/);
});

function count(text: string, pattern: RegExp): number {
  return text.match(pattern)?.length ?? 0;
}

Deno.test("machineSvg keeps to the contract the inspector page relies on", async (t) => {
  for (const kind of KIND_NAMES) {
    await t.step(kind, () => {
      const svg = machineSvg(kind);
      const graph = machineGraph(kind);
      assert.match(
        svg,
        new RegExp(
          `^<svg xmlns="http://www.w3.org/2000/svg" class="machine" data-kind="${kind}" ` +
            `viewBox="0 0 [\\d.]+ [\\d.]+" width="[\\d.]+" height="[\\d.]+">\n<title>`,
        ),
      );
      assert.doesNotMatch(svg, /<script|href=|@import|url\((?!#berth-arrow-)/);
      for (const state of graph.states) {
        const classes = ["state", state.initial && "initial", state.transient && "transient"]
          .concat(state.final && "final").filter(Boolean).join(" ");
        const group = `<g class="${classes}" data-state="${state.id}"><rect `;
        assert.ok(svg.includes(group), group);
        assert.ok(svg.includes(`<text class="count" data-count-for="${state.id}" `));
      }
      assert.equal(count(svg, /<text class="label" [^>]*>[^<]+<\/text>/g), graph.states.length);
      for (const edge of graph.edges) {
        const group = `<g class="edge" data-event="${edge.event}" data-source="${edge.source}" ` +
          `data-target="${edge.target}" data-edge="${edge.id}"><path d="M`;
        assert.ok(svg.includes(group), group);
      }
      assert.equal(count(svg, /<text class="edge-label" /g), graph.edges.length);
      assert.equal(count(svg, /marker-end="url\(#berth-arrow-\w+\)"/g), graph.edges.length + 1);
      for (const number of svg.match(/-?\d+\.\d+/g) ?? []) assert.match(number, /^-?\d+\.\d$/);
      assert.equal(renderSvg(graph, layoutGraph(graph)), svg);
    });
  }
  await t.step("text is escaped", () => {
    const graph = machineGraph("pool");
    const odd = { ...graph, kind: `<a&"b">`, states: graph.states.map((s) => ({ ...s })) };
    odd.states[0]!.id = "<x>";
    const svg = renderSvg(odd, layoutGraph(odd));
    assert.ok(svg.includes(`data-kind="&lt;a&amp;&quot;b&quot;&gt;"`));
    assert.ok(svg.includes(`<text class="label" `) && svg.includes(">&lt;x&gt;</text>"));
    assert.doesNotMatch(svg, /<x>|<a&/);
  });
});
