// Berth's one-time AutoMTLS certificate, made as go-plugin's mtls.go makes its own (go-plugin.md
// §5): a self-signed CA, "localhost" as CN and SAN, serverAuth + clientAuth, ~30 years. WebCrypto
// keys and signature, _der.ts bytes. P-256, not Go's P-521: the host trusts exactly this
// certificate, so the curve is ours to pick, and TLS 1.3 makes P-256 mandatory (RFC 8446 9.1).
import * as der from "./_der.ts";

/** The certificate as DER and PEM, and its private key as PKCS#8 PEM. */
export type SelfSignedCert = { der: Uint8Array; certPem: string; keyPem: string };

const OID = {
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  organization: "2.5.4.10",
  commonName: "2.5.4.3",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
} as const;

const HOST = "localhost";
/** go-plugin's window: NotBefore 30 s back (clocks drift), NotAfter 262 980 h on. */
const BACKDATE_MS = 30_000;
const LIFETIME_MS = 262_980 * 3_600_000;
/** KeyUsage bits 0 (digitalSignature), 4 (keyAgreement), 5 (keyCertSign): 0x8c, 2 bits unused. */
const KEY_USAGE = der.bitString(Uint8Array.of(0x8c), 2);
const SIGNATURE_ALGORITHM = der.sequence(der.objectIdentifier(OID.ecdsaWithSha256));

/** A fresh key pair and a self-signed certificate for it, issued at `now`. */
export async function createSelfSignedCert(now = new Date()): Promise<SelfSignedCert> {
  const ecdsa = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await crypto.subtle.generateKey(ecdsa, true, ["sign", "verify"]);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const tbs = await tbsCertificate(spki, now);
  const rs = new Uint8Array(await crypto.subtle.sign(ecdsa, keys.privateKey, tbs));
  const cert = der.sequence(tbs, SIGNATURE_ALGORITHM, der.bitString(ecdsaSigValue(rs)));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  return { der: cert, certPem: pem("CERTIFICATE", cert), keyPem: pem("PRIVATE KEY", pkcs8) };
}

/** RFC 5280's TBSCertificate: v3, random serial, issuer = subject, the extensions Go sets. */
async function tbsCertificate(spki: Uint8Array, now: Date): Promise<der.Der> {
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0] = (serial[0]! & 0x7f) | 0x40; // positive and never zero, 127 random bits
  const name = der.sequence(
    der.set(der.sequence(der.objectIdentifier(OID.organization), der.utf8String("Berth"))),
    der.set(der.sequence(der.objectIdentifier(OID.commonName), der.utf8String(HOST))),
  );
  // The subjectPublicKey of a P-256 SPKI is its last 65 bytes (04 || x || y); RFC 5280's
  // method 1 key identifier is their SHA-1. CAs are expected to carry one.
  const keyId = new Uint8Array(await crypto.subtle.digest("SHA-1", spki.slice(-65)));
  const extensions = der.sequence(
    extension(OID.basicConstraints, true, der.sequence(der.boolean(true))),
    extension(OID.keyUsage, true, KEY_USAGE),
    extension(
      OID.extKeyUsage,
      false,
      der.sequence(der.objectIdentifier(OID.serverAuth), der.objectIdentifier(OID.clientAuth)),
    ),
    extension(OID.subjectAltName, false, der.sequence(der.implicit(2, encode(HOST)))),
    extension(OID.subjectKeyIdentifier, false, der.octetString(keyId)),
  );
  return der.sequence(
    der.explicit(0, der.unsignedInteger(Uint8Array.of(2))), // v3
    der.unsignedInteger(serial),
    SIGNATURE_ALGORITHM,
    name,
    der.sequence(
      der.time(new Date(now.getTime() - BACKDATE_MS)),
      der.time(new Date(now.getTime() + LIFETIME_MS)),
    ),
    name,
    spki,
    der.explicit(3, extensions),
  );
}

/** `critical` is DEFAULT FALSE, so DER leaves it out unless true. */
function extension(oid: string, critical: boolean, value: Uint8Array): Uint8Array {
  const flag = critical ? [der.boolean(true)] : [];
  return der.sequence(der.objectIdentifier(oid), ...flag, der.octetString(value));
}

/** WebCrypto signs ECDSA as raw r || s; X.509 wants ECDSA-Sig-Value, SEQUENCE { r, s }. */
export function ecdsaSigValue(rs: Uint8Array): Uint8Array {
  const half = rs.length / 2;
  return der.sequence(
    der.unsignedInteger(rs.subarray(0, half)),
    der.unsignedInteger(rs.subarray(half)),
  );
}

function encode(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** PEM: base64 in lines of 64 between BEGIN and END lines naming `label`. */
export function pem(label: string, bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  const lines = btoa(binary).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}
