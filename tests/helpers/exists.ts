// Whether something is at a path, without following a symlink there (a dangling one counts).
export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
