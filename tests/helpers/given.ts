// given / when / then for machines: fold the given events, apply one more, check what came out.
import assert from "node:assert/strict";
import { isCollection } from "immutable";
import { type AnyStateMachine, initialTransition, transition } from "xstate";
import { emittedIntents } from "../../src/engine/engine.ts";

type Event = { type: string; at: number; [field: string]: unknown };
type Expected = { state: string; intents?: unknown[]; context?: Record<string, unknown> };

/** Persistent collections (a volume's mounts) as the plain values a test writes down. */
function plain(value: unknown): unknown {
  return isCollection(value) ? value.toJS() : value;
}

/** Starts a specification: `machine` with `input`, after `events` (each must apply). */
export function given(machine: AnyStateMachine, input: unknown, events: Event[]) {
  let [snapshot] = initialTransition(machine, input);
  for (const event of events) {
    const [next] = transition(machine, snapshot, event);
    assert.notEqual(next, snapshot, `given event ${event.type} did not apply`);
    snapshot = next;
  }
  return {
    snapshot,
    when(event: Event) {
      return {
        /** The event applies: the next state, the intents it emits (none if omitted), context. */
        then(expected: Expected) {
          assert.ok(snapshot.can(event), `${event.type} was refused in ${String(snapshot.value)}`);
          const [next, actions] = transition(machine, snapshot, event);
          assert.equal(String(next.value), expected.state);
          assert.deepEqual(emittedIntents(actions), expected.intents ?? []);
          for (const [key, value] of Object.entries(expected.context ?? {})) {
            assert.deepEqual(plain(next.context[key]), value, `context.${key}`);
          }
          return next;
        },
        /** The machine refuses: can() says no and a transition changes nothing. */
        thenRefused() {
          assert.equal(snapshot.can(event), false, `${event.type} was allowed`);
          const [next, actions] = transition(machine, snapshot, event);
          assert.equal(next, snapshot);
          assert.deepEqual(actions, []);
          return snapshot;
        },
      };
    },
  };
}
