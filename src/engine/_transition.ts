// xstate's `transition()` without its per-call throwaway actor.
//
// `transition(machine, snapshot, event)` builds a whole inert actor on every call (it runs the
// machine's context factory with no input) only to collect the actions; under load that was more
// than half of Berth's CPU. This keeps one inert actor scope per machine and calls the machine's
// own `transition(snapshot, event, scope)` — the public ActorLogic method — collecting actions the
// same way. Safe because machines are pure: nothing runs in the scope, and JS is single-threaded.
// tests/engine/transition_test.ts pins that it gives what xstate's `transition()` gives.
import {
  type AnyActorScope,
  type AnyMachineSnapshot,
  type AnyStateMachine,
  createActor,
  type ExecutableActionObject,
} from "xstate";

type Scope = { scope: AnyActorScope; collected: ExecutableActionObject[] };

const SCOPES = new WeakMap<AnyStateMachine, Scope>();

function scopeOf(machine: AnyStateMachine): Scope {
  let entry = SCOPES.get(machine);
  if (entry) return entry;
  const self = createActor(machine);
  const holder: Scope = { scope: undefined as unknown as AnyActorScope, collected: [] };
  holder.scope = {
    self,
    id: "",
    sessionId: "",
    system: self.system,
    logger: () => {},
    defer: () => {},
    emit: () => {},
    stopChild: () => {},
    actionExecutor: (action) => {
      holder.collected.push(action);
    },
  } as AnyActorScope;
  entry = holder;
  SCOPES.set(machine, entry);
  return entry;
}

/** The next snapshot and the actions xstate would run (emits among them), none of them run. */
export function step(
  machine: AnyStateMachine,
  snapshot: AnyMachineSnapshot,
  event: { type: string },
): [AnyMachineSnapshot, ExecutableActionObject[]] {
  const entry = scopeOf(machine);
  const collected: ExecutableActionObject[] = [];
  entry.collected = collected;
  const next = machine.transition(snapshot, event, entry.scope) as AnyMachineSnapshot;
  return [next, collected];
}
