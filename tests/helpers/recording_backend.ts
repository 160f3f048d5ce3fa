// A volume backend that only records its calls: the one fake we allow, at the backend interface.
import {
  BackendError,
  BackendOptionsError,
  type VolumeBackend,
  type VolumeHostState,
} from "../../src/backends/volume_backend.ts";

export type Call = { op: string; name: string };

/** Records every call; `fail` makes the named operation throw; `host` fakes what inspect sees. */
export function createRecordingBackend() {
  const calls: Call[] = [];
  const fail = new Set<string>();
  const host = new Set<string>();
  const gates: Promise<void>[] = [];
  /** How many times reconcile looked at the host. */
  const surveys = { count: 0 };
  const mountpoint = (name: string) => `/fake/${name}/_data`;
  async function note(op: string, name: string) {
    calls.push({ op, name });
    for (const gate of gates) await gate;
    if (fail.has(op)) throw new BackendError(`${op} failed on purpose`);
  }
  const backend: VolumeBackend = {
    checkOptions(opts) {
      const unknown = Object.keys(opts).filter((key) => !["uid", "gid", "mode"].includes(key));
      if (unknown.length > 0) throw new BackendOptionsError(`unknown option "${unknown[0]}"`);
    },
    async create(name) {
      await note("create", name);
      host.add(name);
      return { mountpoint: mountpoint(name) };
    },
    async mount(name) {
      await note("mount", name);
      return { mountpoint: mountpoint(name) };
    },
    async unmount(name) {
      await note("unmount", name);
    },
    async remove(name) {
      await note("remove", name);
      host.delete(name);
    },
    survey() {
      surveys.count++;
      const seen = new Set(host);
      return Promise.resolve({
        inspect: (name: string): VolumeHostState => ({
          present: seen.has(name),
          mountpoint: mountpoint(name),
        }),
      });
    },
  };
  return { backend, calls, fail, host, gates, surveys };
}
