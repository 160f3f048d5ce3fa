// The volume backend interface: the effects behind volume intents. Never sees an event.

/** An effect that failed; the engine records its message as `effect.failed`. */
export class BackendError extends Error {
  override name = "BackendError";
}

/**
 * The backend went away while an effect was in its hands (its process exited): the effect may or
 * may not have happened. `whenBack` resolves once the backend can be asked again.
 */
export class BackendLostError extends Error {
  override name = "BackendLostError";
  constructor(message: string, readonly whenBack: () => Promise<void>) {
    super(message);
  }
}

/** Options a backend refused before touching anything; the message names the option. */
export class BackendOptionsError extends Error {
  override name = "BackendOptionsError";
}

/** What the host shows of a volume, for reconcile after a restart. */
export type VolumeHostState = { present: boolean; mountpoint: string };

/** What one look at the host showed. */
export type VolumeSurvey = { inspect(name: string): VolumeHostState };

export interface VolumeBackend {
  /** Checks create options without side effects; throws BackendOptionsError. */
  checkOptions(opts: Record<string, string>): void;
  /** Makes the volume; idempotent; returns where its data lives. */
  create(name: string, opts: Record<string, string>): Promise<{ mountpoint: string }>;
  /** Makes the volume usable by a first holder; returns the path Docker bind-mounts. */
  mount(name: string): Promise<{ mountpoint: string }>;
  /** Undoes `mount` once the last holder is gone. */
  unmount(name: string): Promise<void>;
  /** Deletes the volume and its data; idempotent. */
  remove(name: string): Promise<void>;
  /**
   * Looks at the host once, changes nothing: then what it shows of any volume, without another
   * look. For reconcile, which would otherwise look once per volume.
   */
  survey(): Promise<VolumeSurvey>;
}
