// go-plugin's AutoMTLS, plugin side (../shared/protocol/go-plugin.md §5), as a Go plugin's
// server.go does it before it listens: the host's certificate from PLUGIN_CLIENT_CERT, checked
// where it enters, and a one-time certificate of Berth's own for TLS and the handshake line.
import { Buffer } from "node:buffer";
import { X509Certificate } from "node:crypto";
import { createSelfSignedCert } from "./_cert.ts";
import { certField } from "./handshake.ts";
import type { ServerTls } from "./server.ts";

export type AutoMtls =
  | { ok: true; tls: ServerTls; certField: string }
  | { ok: false; message: string };

const PEM_CERTIFICATE_REGEXP =
  /-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END CERTIFICATE-----/g;

/**
 * What `berth plugin` serves with when the host set PLUGIN_CLIENT_CERT to `clientCert`: TLS that
 * lets in only that certificate, and the handshake's sixth field. Go's AppendCertsFromPEM skips
 * blocks it cannot parse and its server carries on with an empty pool that no host can pass; here
 * every CERTIFICATE block must parse, else Berth says why instead of serving nobody.
 */
export async function setUpAutoMtls(clientCert: string): Promise<AutoMtls> {
  const refuse = (why: string) => ({
    ok: false as const,
    message: `Cannot set up AutoMTLS: PLUGIN_CLIENT_CERT ${why}`,
  });
  const blocks = [...clientCert.matchAll(PEM_CERTIFICATE_REGEXP)];
  if (blocks.length === 0) return refuse("holds no PEM certificate");
  for (const [index, [, body]] of blocks.entries()) {
    try {
      new X509Certificate(Buffer.from(body ?? "", "base64"));
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      return refuse(`certificate ${index + 1} does not parse: ${detail}`);
    }
  }
  const own = await createSelfSignedCert();
  return {
    ok: true,
    tls: {
      clientCertPem: blocks.map(([block]) => `${block}\n`).join(""),
      certPem: own.certPem,
      keyPem: own.keyPem,
    },
    certField: certField(own.der),
  };
}
