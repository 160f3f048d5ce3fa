// Where the admin endpoint listens: a unix socket path, or a loopback TCP address. Pure.
// Anything reachable from another host is refused: the admin API shows every actor and its history.

export type AdminAddress =
  | { transport: "unix"; path: string }
  | { transport: "tcp"; hostname: string; port: number };

/** A --admin value Berth will not listen on; the message says why. */
export class AdminAddressError extends Error {
  override name = "AdminAddressError";
}

const PORT_REGEXP = /^\d{1,5}$/;
const IPV4_LOOPBACK_REGEXP = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

/**
 * Parses `/run/berth/x.sock`, `127.0.0.1:PORT`, `localhost:PORT` or `[::1]:PORT` (port 0: any
 * free port). Throws AdminAddressError for anything else, and for non-loopback hosts.
 */
export function parseAdminAddress(text: string): AdminAddress {
  if (text.startsWith("/")) return { transport: "unix", path: text };
  const colon = text.lastIndexOf(":");
  if (colon === -1) {
    throw new AdminAddressError(
      `Cannot listen for admin on "${text}": give an absolute socket path or a loopback ` +
        `HOST:PORT such as 127.0.0.1:9000`,
    );
  }
  let hostname = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (hostname.startsWith("[") && hostname.endsWith("]")) hostname = hostname.slice(1, -1);
  if (!PORT_REGEXP.test(portText) || Number(portText) > 65535) {
    throw new AdminAddressError(
      `Cannot listen for admin on "${text}": port "${portText}" must be 0 to 65535`,
    );
  }
  if (hostname === "localhost") hostname = "127.0.0.1";
  if (!isLoopback(hostname)) {
    throw new AdminAddressError(
      `Cannot listen for admin on "${text}": ${hostname || "every address"} is not a loopback ` +
        `address, and the admin API shows every actor and its history to whoever reaches it; ` +
        `use 127.0.0.1, [::1] or a unix socket`,
    );
  }
  return { transport: "tcp", hostname, port: Number(portText) };
}

function isLoopback(hostname: string): boolean {
  if (hostname === "::1") return true;
  if (!IPV4_LOOPBACK_REGEXP.test(hostname)) return false;
  return hostname.split(".").every((part) => Number(part) <= 255);
}

/** How the address reads in a log line or a URL. */
export function describeAdminAddress(address: AdminAddress): string {
  if (address.transport === "unix") return address.path;
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  return `http://${host}:${address.port}`;
}
