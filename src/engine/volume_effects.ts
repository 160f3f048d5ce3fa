// Volume effects: volume intents carried out by a VolumeBackend, and the volume reconcile rules.
import type { Intent } from "../../machines/intents.ts";
import type { VolumeSnapshot } from "../../machines/volume_machine.ts";
import {
  BackendLostError,
  BackendOptionsError,
  type VolumeBackend,
  type VolumeSurvey,
} from "../backends/volume_backend.ts";
import { type Effects, type EventFields, OutcomeUnknownError } from "./effects.ts";
import { InvalidRequestError } from "./errors.ts";
import { splitActorId } from "./replay.ts";

/** Volume effects through `backend`. */
export function createVolumeEffects(
  backend: VolumeBackend,
  /** On a log several Berths share: this node; volumes another node made are its to settle. */
  node?: string,
): Effects<VolumeSurvey, VolumeSnapshot> {
  return {
    check(actorId, event) {
      if (event.type !== "volume.create") return;
      try {
        backend.checkOptions(event.opts as Record<string, string>);
      } catch (error) {
        if (!(error instanceof BackendOptionsError)) throw error;
        const { name } = splitActorId(actorId);
        throw new InvalidRequestError(`Cannot create volume "${name}": ${error.message}`);
      }
    },
    async run(intent) {
      try {
        return await carryOut(intent);
      } catch (error) {
        if (!(error instanceof BackendLostError)) throw error;
        throw new OutcomeUnknownError(error.message, error.whenBack);
      }
    },
    survey: () => backend.survey(),
    async reconcile(actorId, snapshot, survey) {
      const { name } = splitActorId(actorId);
      const { context } = snapshot;
      if (node !== undefined && context.node !== undefined && context.node !== node) return [];
      const host = survey.inspect(name);
      const state = String(snapshot.value);
      const settle = (ok: boolean, reason: string): EventFields[] =>
        ok ? [{ type: "effect.succeeded" }] : [{ type: "effect.failed", reason }];
      switch (state) {
        // The volume exists exactly when its directory does: create is one rename.
        case "creating":
          return host.present
            ? [{ type: "effect.succeeded", mountpoint: host.mountpoint }]
            : [{ type: "effect.failed", reason: "interrupted by a restart before it finished" }];
        // The caller never had an answer (dockerd retries or gives up) or heard that it failed:
        // nobody holds the mount, so whatever the backend did of it is undone.
        case "mounting": {
          const undone = await backend.unmount(name).then(
            () => "",
            (error) => `; undoing it failed: ${(error as Error).message}`,
          );
          return settle(false, `interrupted before the caller was answered${undone}`);
        }
        // Likewise: the holder stays until dockerd's retried Unmount arrives.
        case "unmounting":
          return settle(false, "interrupted by a restart; the mount is still held");
        // Removal is one rename: the directory is either still there or gone for good.
        case "removing":
          return settle(!host.present, "interrupted by a restart; the volume is still there");
        case "unmounted":
        case "mounted":
          return !host.present
            ? [{ type: "volume.vanished", reason: `directory of volume "${name}" is gone` }]
            : [];
        case "missing":
          return host.present && context.problem !== null ? [{ type: "volume.reappeared" }] : [];
        default:
          return [];
      }
    },
  };

  async function carryOut(intent: Intent): Promise<Record<string, unknown>> {
    switch (intent.type) {
      case "intent.create":
        return await backend.create(intent.volume, intent.opts);
      case "intent.mount":
        return await backend.mount(intent.volume);
      case "intent.unmount":
        await backend.unmount(intent.volume);
        return {};
      case "intent.remove":
        await backend.remove(intent.volume);
        return {};
      default:
        throw new Error(`Volume effects cannot carry out ${intent.type}`);
    }
  }
}
