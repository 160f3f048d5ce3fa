// systemd socket activation (sd_listen_fds(3)): systemd holds the plugin socket and hands it to
// Berth as fd 3, so dockerd's connections wait in its backlog while Berth (re)starts instead of
// failing. Deno's own listeners cannot adopt a descriptor; node:net's can (listen({ fd })), so
// an inherited socket is served through node:net, adapted to the Deno.Listener shape
// _http1.ts reads.
import { Buffer } from "node:buffer";
import net from "node:net";
import type { StreamConn, StreamListener } from "./_http1.ts";

/** The first passed descriptor (SD_LISTEN_FDS_START). */
const FIRST_FD = 3;

/** How many bytes a connection holds unread before it stops reading from the socket. */
const HIGH_WATER = 256 * 1024;

/**
 * The listening descriptor systemd passed to this very process, or null: LISTEN_PID must be
 * this process's pid (a child does not inherit the meaning) and LISTEN_FDS at least 1.
 */
export function inheritedSocketFd(
  env: { get(name: string): string | undefined } = Deno.env,
  pid = Deno.pid,
): number | null {
  if (env.get("LISTEN_PID") !== String(pid)) return null;
  const count = Number(env.get("LISTEN_FDS"));
  return Number.isInteger(count) && count >= 1 ? FIRST_FD : null;
}

/** Listens on inherited descriptor `fd`; resolves once node:net adopted it. */
export function listenOnFd(fd: number): Promise<StreamListener> {
  const server = net.createServer({ pauseOnConnect: true });
  const waiting: PromiseWithResolvers<StreamConn>[] = [];
  const ready: StreamConn[] = [];
  let closed = false;
  server.on("connection", (socket: net.Socket) => {
    const conn = adapt(socket);
    const taker = waiting.shift();
    if (taker) taker.resolve(conn);
    else ready.push(conn);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ fd }, () => {
      server.off("error", reject);
      resolve({
        accept() {
          if (closed) return Promise.reject(new Deno.errors.BadResource("listener closed"));
          const conn = ready.shift();
          if (conn) return Promise.resolve(conn);
          const taker = Promise.withResolvers<StreamConn>();
          waiting.push(taker);
          return taker.promise;
        },
        close() {
          if (closed) throw new Deno.errors.BadResource("listener closed");
          closed = true;
          server.close();
          for (const conn of ready.splice(0)) conn.close();
          for (const taker of waiting.splice(0)) {
            taker.reject(new Deno.errors.BadResource("listener closed"));
          }
        },
      });
    });
  });
}

/** A node:net socket as a Deno.Conn-shaped reader and writer. */
function adapt(socket: net.Socket): StreamConn {
  const chunks: Buffer[] = [];
  let buffered = 0;
  let ended = false;
  let failed: Error | null = null;
  let reader: PromiseWithResolvers<void> | null = null;
  const wake = () => {
    reader?.resolve();
    reader = null;
  };
  socket.on("data", (chunk: Buffer) => {
    chunks.push(chunk);
    buffered += chunk.length;
    if (buffered > HIGH_WATER) socket.pause();
    wake();
  });
  socket.on("end", () => {
    ended = true;
    wake();
  });
  socket.on("error", (error: Error) => {
    failed = error;
    wake();
  });
  socket.on("close", () => {
    ended = true;
    wake();
  });
  socket.resume();
  return {
    async read(into: Uint8Array): Promise<number | null> {
      while (chunks.length === 0) {
        if (failed) throw failed;
        if (ended) return null;
        reader = Promise.withResolvers<void>();
        await reader.promise;
      }
      const chunk = chunks[0]!;
      const count = Math.min(into.length, chunk.length);
      into.set(chunk.subarray(0, count));
      if (count === chunk.length) chunks.shift();
      else chunks[0] = chunk.subarray(count);
      buffered -= count;
      if (buffered <= HIGH_WATER && socket.isPaused()) socket.resume();
      return count;
    },
    write(bytes: Uint8Array): Promise<number> {
      if (socket.destroyed) return Promise.reject(new Deno.errors.BrokenPipe("connection closed"));
      return new Promise((resolve, reject) =>
        socket.write(Buffer.from(bytes), (error) => error ? reject(error) : resolve(bytes.length))
      );
    },
    closeWrite(): Promise<void> {
      return new Promise((resolve) => socket.end(resolve));
    },
    close() {
      if (socket.destroyed) throw new Deno.errors.BadResource("connection closed");
      socket.destroy();
      ended = true;
      wake();
    },
  };
}
