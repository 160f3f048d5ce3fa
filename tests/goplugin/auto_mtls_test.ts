// go-plugin's AutoMTLS from the plugin side: what setUpAutoMtls accepts, and `berth plugin` as a
// real child that lets in the host's certificate only. (go_host_test.ts does the same with the
// real go-plugin library; this one also tries the clients a Go host never is.)
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { X509Certificate } from "node:crypto";
import { connect } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { createSelfSignedCert, pem } from "../../src/transport/goplugin/_cert.ts";
import { setUpAutoMtls } from "../../src/transport/goplugin/auto_mtls.ts";
import { parseHandshake } from "../../src/transport/goplugin/handshake.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { COOKIE, endChild, firstLine, launch, unary } from "./_plugin_child.ts";

const HEALTH_CHECK = "/grpc.health.v1.Health/Check";
const CHECK_PLUGIN = new Uint8Array([0x0a, 6, ...new TextEncoder().encode("plugin")]);

/** The handshake's sixth field back to DER: Go's RawStdEncoding, padding put back for atob. */
function derOf(field: string): Uint8Array {
  const padded = field + "=".repeat((4 - field.length % 4) % 4);
  return Uint8Array.from(atob(padded), (char) => char.charCodeAt(0));
}

Deno.test("setUpAutoMtls takes PEM certificates and refuses what is not one", async (t) => {
  const host = await createSelfSignedCert();
  await t.step("the host's certificate: TLS material and the handshake field", async () => {
    const mtls = await setUpAutoMtls(`junk before\n${host.certPem}junk after`);
    assert.ok(mtls.ok);
    assert.equal(mtls.tls.clientCertPem, host.certPem, "only the certificate block is kept");
    assert.doesNotMatch(mtls.certField, /[=\n]/);
    const own = new X509Certificate(derOf(mtls.certField));
    assert.equal(own.subjectAltName, "DNS:localhost");
    assert.equal(own.toString(), new X509Certificate(mtls.tls.certPem).toString());
  });
  await t.step("not a certificate: one sentence that says which", async () => {
    const cases: [string, RegExp][] = [
      ["hello", /^Cannot set up AutoMTLS: PLUGIN_CLIENT_CERT holds no PEM certificate$/],
      [pem("PRIVATE KEY", host.der), /holds no PEM certificate/],
      [pem("CERTIFICATE", Uint8Array.of(0x30, 3, 1, 2, 3)), /certificate 1 does not parse: /],
      [host.certPem + pem("CERTIFICATE", host.der.subarray(1)), /certificate 2 does not parse/],
    ];
    for (const [text, expected] of cases) {
      const mtls = await setUpAutoMtls(text);
      assert.equal(mtls.ok, false, text);
      assert.match((mtls as { message: string }).message, expected);
    }
  });
});

Deno.test("berth plugin with AutoMTLS serves only the host's client certificate", async (t) => {
  await using dir = await tempDir();
  const host = await createSelfSignedCert();
  const child = launch(dir.path, {
    ...COOKIE,
    PLUGIN_PROTOCOL_VERSIONS: "1",
    PLUGIN_CLIENT_CERT: host.certPem,
  });
  const stderr = new Response(child.stderr).text();
  const { line, rest } = await firstLine(child.stdout);
  const handshake = parseHandshake(line, [1]);
  assert.ok(typeof handshake !== "string", `${handshake}\n${line}`);
  assert.ok(handshake.cert.length > 50, line);
  const serverCertPem = pem("CERTIFICATE", derOf(handshake.cert));
  const target = `unix://${handshake.address}`;
  // As a Go host dials: its certificate, the plugin's as the only root, server name localhost.
  const clientWith = (credentials: grpc.ChannelCredentials) =>
    new grpc.Client(target, credentials, { "grpc.ssl_target_name_override": "localhost" });
  const tls = (key?: string, cert?: string) =>
    grpc.credentials.createSsl(
      Buffer.from(serverCertPem),
      key === undefined ? null : Buffer.from(key),
      cert === undefined ? null : Buffer.from(cert),
    );
  const hostClient = clientWith(tls(host.keyPem, host.certPem));
  try {
    await t.step("the host's certificate: health SERVING", async () => {
      assert.deepEqual([...await unary(hostClient, HEALTH_CHECK, CHECK_PLUGIN)], [0x08, 1]);
    });
    // grpc-go 1.67 and later refuse a TLS peer that does not agree on ALPN "h2".
    await t.step("the host's certificate: TLS 1.3 with ALPN h2", async () => {
      const socket = connect({
        path: handshake.address,
        servername: "localhost",
        ca: serverCertPem,
        key: host.keyPem,
        cert: host.certPem,
        ALPNProtocols: ["h2"],
      });
      const connected = Promise.withResolvers<void>();
      socket.once("secureConnect", connected.resolve).once("error", connected.reject);
      try {
        await connected.promise;
        assert.equal(socket.alpnProtocol, "h2");
        assert.equal(socket.getProtocol(), "TLSv1.3");
      } finally {
        const closed = new Promise((resolve) => socket.once("close", resolve));
        socket.destroy();
        await closed;
      }
    });
    const other = await createSelfSignedCert();
    const strangers: [string, grpc.ChannelCredentials][] = [
      ["no client certificate", tls()],
      ["another certificate", tls(other.keyPem, other.certPem)],
      ["cleartext HTTP/2", grpc.credentials.createInsecure()],
    ];
    for (const [who, credentials] of strangers) {
      await t.step(`${who}: refused`, async () => {
        const client = clientWith(credentials);
        try {
          await assert.rejects(
            unary(client, HEALTH_CHECK, CHECK_PLUGIN),
            (error: grpc.ServiceError) => error.code === grpc.status.UNAVAILABLE,
          );
        } finally {
          client.close();
        }
      });
    }
    await t.step("the host's certificate still works, and Shutdown exits 0", async () => {
      assert.deepEqual([...await unary(hostClient, HEALTH_CHECK, CHECK_PLUGIN)], [0x08, 1]);
      await unary(hostClient, "/plugin.GRPCController/Shutdown", new Uint8Array(0));
      assert.equal((await child.status).code, 0, await stderr);
      assert.equal(await rest, "", "nothing on stdout after the handshake");
      assert.match(await stderr, /with AutoMTLS/);
    });
  } finally {
    await endChild(child, hostClient);
  }
});

Deno.test("berth plugin refuses a PLUGIN_CLIENT_CERT that does not parse", async () => {
  await using dir = await tempDir();
  const output = await launch(dir.path, {
    ...COOKIE,
    PLUGIN_PROTOCOL_VERSIONS: "1",
    PLUGIN_CLIENT_CERT: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
  }).output();
  assert.equal(output.code, 1);
  assert.equal(output.stdout.length, 0, "nothing on stdout");
  const lines = new TextDecoder().decode(output.stderr).trim().split("\n");
  assert.equal(lines.length, 1, lines.join("\n"));
  const entry = JSON.parse(lines[0]!);
  assert.equal(entry["@level"], "error");
  assert.match(entry["@message"], /^Cannot set up AutoMTLS: .*certificate 1 does not parse/);
  assert.deepEqual([...Deno.readDirSync(dir.path)].map((e) => e.name), [], "no socket, no state");
});
