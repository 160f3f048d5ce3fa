// go-plugin's handshake, both sides, as pure functions (../shared/protocol/go-plugin.md §2–3):
// what a launched plugin makes of its environment, the line it prints, and what a host makes of
// the line a plugin printed. No I/O here: the callers read the environment and the pipes.

/** The cookie a host sets so that Berth knows it was launched as a plugin. */
export const MAGIC_COOKIE = { key: "BERTH_PLUGIN", value: "berth-driver-engine" } as const;

/** go-plugin's core protocol version: the first field of every handshake line. */
export const CORE_VERSION = 1;

/** The app protocol versions Berth speaks as a plugin (its gRPC services' versions). */
export const APP_VERSIONS: readonly number[] = [1];

export type Launch =
  | { ok: true; version: number }
  | { ok: false; message: string };

/**
 * What a launched plugin decides from its environment: the cookie must match, and
 * PLUGIN_PROTOCOL_VERSIONS (unordered, comma-separated) must share a version with `ours`; the
 * highest shared one is taken. Entries that are not numbers are passed over.
 */
export function negotiate(
  env: (name: string) => string | undefined,
  ours: readonly number[] = APP_VERSIONS,
): Launch {
  if (env(MAGIC_COOKIE.key) !== MAGIC_COOKIE.value) {
    return {
      ok: false,
      message: "berth plugin is meant to be launched by a go-plugin host (which sets " +
        `${MAGIC_COOKIE.key}); to run Berth directly, use "berth serve"`,
    };
  }
  const offered = new Set(
    (env("PLUGIN_PROTOCOL_VERSIONS") ?? "").split(",").map((part) => part.trim())
      .filter((part) => /^\d{1,9}$/.test(part)).map(Number),
  );
  const shared = [...ours].sort((a, b) => b - a).find((version) => offered.has(version));
  if (shared === undefined) {
    const theirs = [...offered].sort((a, b) => a - b).join(", ") || "none";
    return {
      ok: false,
      message: `the go-plugin host offers app protocol versions ${theirs}; ` +
        `Berth speaks ${ours.join(", ")}`,
    };
  }
  return { ok: true, version: shared };
}

export type Handshake = {
  core: number;
  app: number;
  network: "unix" | "tcp";
  address: string;
  protocol: "grpc" | "netrpc";
  /** The server's DER certificate, base64 without padding (AutoMTLS), or "" (none, or short). */
  cert: string;
};

/**
 * The sixth field under AutoMTLS: the server certificate's DER in base64 without padding, Go's
 * RawStdEncoding, since go-plugin's hosts decode it with exactly that.
 */
export function certField(der: Uint8Array): string {
  let binary = "";
  for (const byte of der) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/=+$/, "");
}

/**
 * Go's base64.RawStdEncoding: standard alphabet, no "=" (Go refuses it, so a padded certificate
 * fails in a Go host; we refuse it here first), and no length that leaves 6 bits over.
 */
const RAW_STD_BASE64_REGEXP = /^[A-Za-z0-9+/]*$/;

/** go-plugin hosts take field 6 as a certificate only when longer than this (client.go). */
const CERT_FIELD_MIN = 51;

/** The handshake line a plugin prints on stdout (with its newline), once it listens. */
export function handshakeLine(handshake: Omit<Handshake, "core">): string {
  const { app, network, address, protocol, cert } = handshake;
  return `${CORE_VERSION}|${app}|${network}|${address}|${protocol}|${cert}\n`;
}

/**
 * What a host makes of a plugin's first stdout line: the handshake, or why it is refused
 * (quoting the line). `offered` are the app versions the host offered.
 */
export function parseHandshake(line: string, offered: readonly number[]): Handshake | string {
  const text = line.trim();
  const refuse = (why: string) => `${why}: ${JSON.stringify(text.slice(0, 200))}`;
  const parts = text.split("|");
  if (parts.length < 4) return refuse("not a go-plugin handshake line");
  const [core = "", app = "", network = "", address = "", protocol = "netrpc", cert = ""] = parts;
  if (core !== String(CORE_VERSION)) return refuse(`core protocol version is not ${CORE_VERSION}`);
  if (!/^\d{1,9}$/.test(app) || !offered.includes(Number(app))) {
    return refuse(`app protocol version is not one offered (${offered.join(", ")})`);
  }
  if (network !== "unix" && network !== "tcp") return refuse("network is neither unix nor tcp");
  if (address === "") return refuse("no address");
  if (protocol !== "grpc") return refuse("protocol is not grpc");
  const parsed = { core: CORE_VERSION, app: Number(app), network, address, protocol } as const;
  // Like go-plugin's hosts, a short sixth field is not a certificate ("extra" data that some
  // older plugins print) and is passed over; a long one must decode.
  if (cert.length < CERT_FIELD_MIN) return { ...parsed, cert: "" };
  if (!RAW_STD_BASE64_REGEXP.test(cert) || cert.length % 4 === 1) {
    return refuse("server certificate is not base64 without padding");
  }
  return { ...parsed, cert };
}
