// Unix socket files shared by the plugin and admin servers: a stale file left by a crash is
// replaced, a live one (another process answers there) is not.

/** Someone else answers on the socket path. */
export class SocketInUseError extends Error {
  override name = "SocketInUseError";
}

/** Removes a socket file nobody answers on; throws SocketInUseError if someone does. */
export async function clearStaleSocket(path: string) {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (!info.isSocket) {
    throw new SocketInUseError(`Cannot listen on ${path}: a file that is not a socket is there`);
  }
  try {
    const connection = await Deno.connect({ transport: "unix", path });
    connection.close();
    throw new SocketInUseError(`Cannot listen on ${path}: another process is listening there`);
  } catch (error) {
    if (error instanceof SocketInUseError) throw error;
    // Nobody answers: the file is left over from a crash.
    await Deno.remove(path);
  }
}
