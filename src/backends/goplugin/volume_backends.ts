// The volume backends of a running Berth: the local directory backend, and each go-plugin backend
// of the --config file behind a supervisor, all behind one router chosen by `-o backend=NAME`.
import type { VolumeBackend } from "../volume_backend.ts";
import type { BackendSpec } from "./config.ts";
import { createGrpcBackend } from "./grpc_backend.ts";
import { BACKEND_OPTION, createRoutedBackend, type RoutedBackend } from "./router.ts";
import { type BackendSupervisor, superviseBackend } from "./supervisor.ts";

export type VolumeBackends = {
  backend: RoutedBackend;
  /** Tells the router where each replayed volume lives, from its create options. */
  assignAll(volumes: Iterable<{ name: string; opts: Record<string, string> }>): void;
  /** Stops every go-plugin backend; none is left running. */
  stop(): Promise<void>;
};

export type VolumeBackendsOptions = {
  /** Lines a backend writes on stderr, and warnings about backends. */
  log: (backend: string, line: string) => void;
  warn: (message: string) => void;
  /** How long the start waits for each backend's first handshake (reconcile asks them). */
  readyMs?: number;
};

/** Launches the go-plugin backends of `specs` and waits (bounded) for each to answer. */
export async function startVolumeBackends(
  local: VolumeBackend,
  specs: ReadonlyMap<string, BackendSpec>,
  options: VolumeBackendsOptions,
): Promise<VolumeBackends> {
  const supervisors = new Map<string, BackendSupervisor>();
  const remote = new Map<string, VolumeBackend>();
  for (const [name, spec] of specs) {
    const supervisor = superviseBackend(name, spec, { log: options.log, warn: options.warn });
    supervisors.set(name, supervisor);
    remote.set(name, createGrpcBackend(name, supervisor));
  }
  const readyMs = options.readyMs ?? 10_000;
  await Promise.all([...supervisors].map(async ([name, supervisor]) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => timer = setTimeout(resolve, readyMs));
    // A backend that fails its first launch is not waited for: the start goes on without it.
    await Promise.race([supervisor.firstAttempt, late]);
    clearTimeout(timer);
    try {
      supervisor.current();
    } catch {
      options.warn(
        `volume backend "${name}" is not running at start; reconcile leaves its volumes`,
      );
    }
  }));
  const backend = createRoutedBackend(local, remote, options.warn);
  return {
    backend,
    assignAll(volumes) {
      if (specs.size === 0) return; // every volume is local: nothing to look at
      for (const { name, opts } of volumes) {
        if (Object.hasOwn(opts, BACKEND_OPTION)) backend.assign(name, opts[BACKEND_OPTION]!);
      }
    },
    async stop() {
      await Promise.all([...supervisors.values()].map((supervisor) => supervisor.stop()));
    },
  };
}
