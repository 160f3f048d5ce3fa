// The AutoMTLS certificate (_cert.ts, over _der.ts), read back by X.509 parsers that are not ours:
// node:crypto's X509Certificate, and openssl when it is on PATH. Plus the DER pieces by the byte.
import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { createSelfSignedCert, ecdsaSigValue, pem } from "../../src/transport/goplugin/_cert.ts";
import * as der from "../../src/transport/goplugin/_der.ts";
import { onPath, skipUnless } from "../helpers/skip.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");

Deno.test("createSelfSignedCert: a localhost CA that signed itself, for ~30 years", async () => {
  const now = new Date();
  const cert = await createSelfSignedCert(now);
  const x509 = new X509Certificate(cert.certPem);
  assert.deepEqual(new Uint8Array(x509.raw), cert.der, "the PEM holds the DER");
  assert.equal(x509.subject, "O=Berth\nCN=localhost");
  assert.equal(x509.issuer, x509.subject);
  assert.equal(x509.subjectAltName, "DNS:localhost");
  assert.equal(x509.checkHost("localhost"), "localhost");
  assert.equal(x509.ca, true);
  assert.deepEqual(x509.keyUsage, ["DigitalSignature", "KeyAgreement", "KeyCertSign"]);
  const from = new Date(x509.validFrom).getTime();
  const to = new Date(x509.validTo).getTime();
  assert.equal(Math.floor(now.getTime() / 1000) * 1000 - from, 30_000, "backdated 30 s");
  assert.ok(to - now.getTime() > 29.9 * 365.25 * 24 * 3600_000, x509.validTo);
  assert.match(x509.serialNumber, /^[4-7][0-9A-F]{31}$/, "positive, 16 bytes");
  assert.equal(x509.verify(x509.publicKey), true, "signed with its own key");
  assert.equal(x509.checkIssued(x509), true);
  assert.equal(x509.checkPrivateKey(createPrivateKey(cert.keyPem)), true);
  assert.match(cert.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);

  const other = new X509Certificate((await createSelfSignedCert()).certPem);
  assert.equal(x509.verify(other.publicKey), false, "not signed by another key");
  assert.notEqual(other.serialNumber, x509.serialNumber);
});

const OPENSSL_TEST = "createSelfSignedCert: openssl reads the extensions and verifies it itself";

Deno.test({
  name: OPENSSL_TEST,
  ignore: skipUnless(OPENSSL_TEST, onPath("openssl") ? null : "openssl not on PATH"),
  async fn() {
    await using dir = await tempDir("berth-cert-");
    const file = `${dir.path}/cert.pem`;
    await Deno.writeTextFile(file, (await createSelfSignedCert()).certPem);
    const openssl = async (...args: string[]) => {
      const out = await new Deno.Command("openssl", { args, stdout: "piped", stderr: "piped" })
        .output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, text);
      return text;
    };
    const text = await openssl("x509", "-in", file, "-noout", "-text");
    for (
      const expected of [
        /Version: 3 \(0x2\)/,
        /Signature Algorithm: ecdsa-with-SHA256/,
        /NIST CURVE: P-256/,
        /Basic Constraints: critical\s+CA:TRUE/,
        /Key Usage: critical\s+Digital Signature, Key Agreement, Certificate Sign/,
        /Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/,
        /Subject Alternative Name:\s+DNS:localhost/,
        /Subject Key Identifier:/,
      ]
    ) assert.match(text, expected);
    assert.match(await openssl("verify", "-x509_strict", "-CAfile", file, file), /: OK/);
    await openssl("asn1parse", "-in", file, "-strictpem");
  },
});

Deno.test("der: lengths, integers, identifiers, times and ECDSA signatures by the byte", () => {
  assert.equal(hex(der.tlv(0x04, new Uint8Array(3))), "0403000000");
  assert.equal(hex(der.tlv(0x04, new Uint8Array(200)).subarray(0, 3)), "0481c8");
  assert.equal(hex(der.tlv(0x04, new Uint8Array(300)).subarray(0, 4)), "0482012c");
  assert.equal(hex(der.unsignedInteger(Uint8Array.of(0, 0, 0x12))), "020112");
  assert.equal(hex(der.unsignedInteger(Uint8Array.of(0x80))), "02020080");
  assert.equal(hex(der.unsignedInteger(Uint8Array.of(0, 0))), "020100");
  assert.equal(hex(der.objectIdentifier("1.2.840.10045.4.3.2")), "06082a8648ce3d040302");
  assert.equal(hex(der.objectIdentifier("2.5.29.17")), "0603551d11");
  assert.equal(hex(der.boolean(true)), "0101ff");
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes.subarray(2));
  assert.equal(text(der.time(new Date("2026-11-28T12:00:00.750Z"))), "261128120000Z");
  assert.equal(der.time(new Date("2049-12-31T23:59:59Z"))[0], 0x17, "UTCTime through 2049");
  const generalized = der.time(new Date("2056-11-28T00:56:22Z"));
  assert.equal(generalized[0], 0x18, "GeneralizedTime from 2050");
  assert.equal(text(generalized), "20561128005622Z");
  // r with its top bit set gains a 00; s with leading zeros loses them.
  const rs = new Uint8Array(64);
  rs[0] = 0x80;
  rs[63] = 0x01;
  assert.equal(hex(ecdsaSigValue(rs)), `3026022100${"80" + "00".repeat(31)}020101`);
  assert.equal(pem("X", Uint8Array.of(1, 2, 3)), "-----BEGIN X-----\nAQID\n-----END X-----\n");
});
