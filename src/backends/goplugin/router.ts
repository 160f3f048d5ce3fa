// One VolumeBackend in front of several: a volume created with `-o backend=NAME` has its effects
// done by that go-plugin backend, every other one by the local directory backend. Which backend
// holds a volume comes from its create options: recorded at create, and rebuilt at start from the
// replayed volumes (assign), so the log stays the only truth.
import { BackendOptionsError, type VolumeBackend, type VolumeSurvey } from "../volume_backend.ts";

export type RoutedBackend = VolumeBackend & {
  /** Says that `volume` lives in backend `backend` (from its create options, at start). */
  assign(volume: string, backend: string): void;
};

/** The option that picks a backend. */
export const BACKEND_OPTION = "backend";

export function createRoutedBackend(
  local: VolumeBackend,
  backends: ReadonlyMap<string, VolumeBackend>,
  warn: (message: string) => void,
): RoutedBackend {
  const owner = new Map<string, VolumeBackend>();
  const of = (volume: string) => owner.get(volume) ?? local;
  const chosen = (opts: Record<string, string>) =>
    Object.hasOwn(opts, BACKEND_OPTION) ? backends.get(opts[BACKEND_OPTION]!) : undefined;
  return {
    assign(volume, backend) {
      const found = backends.get(backend);
      if (found) owner.set(volume, found);
      else warn(`volume "${volume}" lives in backend "${backend}", which is not configured`);
    },
    checkOptions(opts) {
      if (!Object.hasOwn(opts, BACKEND_OPTION)) return local.checkOptions(opts);
      if (!chosen(opts)) {
        const known = [...backends.keys()].join(", ") || "none configured (--config)";
        throw new BackendOptionsError(
          `unknown backend ${JSON.stringify(opts[BACKEND_OPTION])} (known: ${known})`,
        );
      }
    },
    create(volume, opts) {
      const backend = chosen(opts) ?? local;
      if (backend !== local) owner.set(volume, backend);
      return backend.create(volume, opts);
    },
    mount: (volume) => of(volume).mount(volume),
    unmount: (volume) => of(volume).unmount(volume),
    async remove(volume) {
      await of(volume).remove(volume);
      owner.delete(volume);
    },
    async survey(): Promise<VolumeSurvey> {
      const looks = new Map<VolumeBackend, VolumeSurvey | null>();
      for (const backend of [local, ...backends.values()]) {
        try {
          looks.set(backend, await backend.survey());
        } catch (error) {
          // A backend that cannot be asked: its volumes are left as they are, not called gone.
          warn(`reconcile cannot ask a volume backend: ${(error as Error).message}`);
          looks.set(backend, null);
        }
      }
      return {
        inspect(volume) {
          const look = looks.get(of(volume));
          return look ? look.inspect(volume) : { present: true, mountpoint: "" };
        },
      };
    },
  };
}
