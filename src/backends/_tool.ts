// Running `ip` and `bridge` for the plumbing: in a network namespace when asked, stdout back,
// and a failure said as the command line and what the tool wrote on stderr.
import { BackendError } from "./volume_backend.ts";

/** A tool that ran and failed: the command line with its stderr (or exit code), and the stderr. */
export class ToolFailed extends Error {
  override name = "ToolFailed";
  constructor(message: string, readonly stderr: string) {
    super(message);
  }
}

/**
 * Runs `binary` with `-n netns` (when given) and `args`; resolves to its stdout. A tool that
 * cannot be started is a BackendError; one that exits non-zero is a ToolFailed.
 */
export async function runTool(binary: string, prefix: string[], args: string[]): Promise<string> {
  const full = [...prefix, ...args];
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(binary, { args: full, stdin: "null" }).output();
  } catch (cause) {
    throw new BackendError(`${binary} ${full.join(" ")}: ${String(cause)}`, { cause });
  }
  if (out.success) return new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr).trim();
  throw new ToolFailed(`${binary} ${full.join(" ")}: ${stderr || `exit code ${out.code}`}`, stderr);
}
