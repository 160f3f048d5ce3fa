// Keeps one go-plugin backend running: launched at start, launched again with backoff whenever
// it exits or fails to start, and stopped for good at Berth's stop. While it is down, a call that
// needs it is told at once which backend and why, rather than waiting.
import type { BackendSpec } from "./config.ts";
import {
  BackendLaunchError,
  launchBackend,
  type LaunchOptions,
  type RunningBackend,
} from "./launch.ts";

export type BackendSupervisor = {
  /** The running backend, or a BackendDownError naming it and why it is down. */
  current(): RunningBackend;
  /** Resolves with the running backend once there is one (or rejects once stopped). */
  ready(): Promise<RunningBackend>;
  /** Settles once the first launch succeeded or failed: how long a start need wait for it. */
  firstAttempt: Promise<void>;
  /** How many times it was launched (the first included). */
  readonly launches: number;
  /** Stops it for good: Shutdown, grace, SIGKILL; no process is left. */
  stop(): Promise<void>;
};

/** The backend a call needs is not running; the message names it and says why. */
export class BackendDownError extends Error {
  override name = "BackendDownError";
}

export type SupervisorOptions = LaunchOptions & {
  /** Waits between launches: the first, doubling to the last (defaults 250 ms to 8 s). */
  backoffMs?: { first: number; max: number };
  /** Told of each exit and failed launch, one line each. */
  warn: (message: string) => void;
};

export function superviseBackend(
  name: string,
  spec: BackendSpec,
  options: SupervisorOptions,
): BackendSupervisor {
  const { first, max } = options.backoffMs ?? { first: 250, max: 8000 };
  let running: RunningBackend | null = null;
  let why = "it is starting";
  let stopped = false;
  let launches = 0;
  let wait = first;
  let waiting = Promise.withResolvers<RunningBackend>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let launching: Promise<void> | null = null;
  const firstAttempt = Promise.withResolvers<void>();

  function launch() {
    timer = undefined;
    launching = attempt().finally(() => {
      launching = null;
      firstAttempt.resolve();
    });
  }

  async function attempt() {
    if (stopped) return;
    launches++;
    try {
      const backend = await launchBackend(name, spec, options);
      if (stopped) {
        await backend.stop();
        return;
      }
      running = backend;
      wait = first;
      waiting.resolve(backend);
      backend.exited.then((code) => {
        if (running !== backend) return;
        running = null;
        waiting = Promise.withResolvers();
        if (stopped) return;
        why = `it exited (code ${code}); restarting`;
        options.warn(`volume backend "${name}" exited with code ${code}; starting it again`);
        again();
      });
    } catch (error) {
      why = `${error instanceof BackendLaunchError ? error.reason : String(error)}; trying again`;
      options.warn(`${(error as Error).message}; trying again in ${wait / 1000} s`);
      again();
    }
  }

  function again() {
    if (stopped) return;
    timer = setTimeout(launch, wait);
    wait = Math.min(max, wait * 2);
  }

  launch();
  return {
    current() {
      if (running) return running;
      throw new BackendDownError(`volume backend "${name}" is not running: ${why}`);
    },
    ready: () => waiting.promise,
    firstAttempt: firstAttempt.promise,
    get launches() {
      return launches;
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await launching; // a launch in flight stops what it started
      const backend = running;
      running = null;
      waiting.reject(new BackendDownError(`volume backend "${name}" is stopped`));
      waiting.promise.catch(() => {});
      await backend?.stop();
    },
  };
}
