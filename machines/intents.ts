// Intents: the plain-data requests for work that machines emit and the engine carries out.
// Imports nothing: a machine says what should happen, never how.

/** Work a volume machine asks the engine to do through a volume backend. */
export type VolumeIntent =
  | { type: "intent.create"; volume: string; opts: Record<string, string> }
  | { type: "intent.mount"; volume: string; mountId: string }
  | { type: "intent.unmount"; volume: string; mountId: string }
  | { type: "intent.remove"; volume: string };

/** Every intent any machine can emit. */
export type Intent = VolumeIntent;
