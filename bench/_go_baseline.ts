// The Go baseline: bench/baseline/go_volume_plugin.go (net/http, in memory, no fsync), built with
// the local `go` toolchain when there is one, so Berth can be compared with it on the same machine.
import { join } from "node:path";
import { type ProcessTracker, type ServerProcess, spawnServer } from "./_process.ts";

const SOURCE = new URL("./baseline/go_volume_plugin.go", import.meta.url).pathname;

/** `go version`, or null when there is no usable Go toolchain. */
export async function goVersion(): Promise<string | null> {
  try {
    const output = await new Deno.Command("go", {
      args: ["version"],
      stdout: "piped",
      stderr: "null",
    })
      .output();
    return output.success ? new TextDecoder().decode(output.stdout).trim() : null;
  } catch {
    return null;
  }
}

/** Builds the baseline into `dir`; returns the binary's path. */
export async function buildGoBaseline(dir: string): Promise<string> {
  const binary = join(dir, "go_volume_plugin");
  const output = await new Deno.Command("go", {
    args: ["build", "-o", binary, SOURCE],
    env: { GO111MODULE: "off", GOFLAGS: "" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(`go build failed:\n${new TextDecoder().decode(output.stderr)}`);
  }
  return binary;
}

/** Starts the built baseline on `socket`. */
export function spawnGoBaseline(
  tracker: ProcessTracker,
  binary: string,
  socket: string,
): ServerProcess {
  return spawnServer(tracker, {
    label: "Go baseline",
    command: binary,
    args: ["-socket", socket],
    socket,
  });
}
