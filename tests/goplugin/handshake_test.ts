// The go-plugin handshake as a table: cookie, version negotiation, lines printed and parsed.
import assert from "node:assert/strict";
import {
  certField,
  handshakeLine,
  negotiate,
  parseHandshake,
} from "../../src/transport/goplugin/handshake.ts";

/** Long enough for a host to read it as a certificate (> 50), every kind of base64 character. */
const CERT = "MIIB" + "+/09az".repeat(10);

const COOKIE = { BERTH_PLUGIN: "berth-driver-engine" };
const envOf = (vars: Record<string, string>) => (name: string) =>
  Object.hasOwn(vars, name) ? vars[name] : undefined;

Deno.test("negotiate: the cookie, then the highest version both sides know", () => {
  const cases: [Record<string, string>, number[], number | RegExp][] = [
    [{ ...COOKIE, PLUGIN_PROTOCOL_VERSIONS: "1" }, [1], 1],
    [{ ...COOKIE, PLUGIN_PROTOCOL_VERSIONS: "3,1,2" }, [1, 2], 2],
    [{ ...COOKIE, PLUGIN_PROTOCOL_VERSIONS: " 2 , x, 1" }, [1, 2, 3], 2],
    [
      { ...COOKIE, PLUGIN_PROTOCOL_VERSIONS: "5,7" },
      [1],
      /offers app protocol versions 5, 7; Berth speaks 1/,
    ],
    [{ ...COOKIE }, [1], /offers app protocol versions none/],
    [{ PLUGIN_PROTOCOL_VERSIONS: "1" }, [1], /meant to be launched by a go-plugin host/],
    [{ BERTH_PLUGIN: "wrong", PLUGIN_PROTOCOL_VERSIONS: "1" }, [1], /berth serve/],
  ];
  for (const [vars, ours, expected] of cases) {
    const launch = negotiate(envOf(vars), ours);
    if (typeof expected === "number") assert.deepEqual(launch, { ok: true, version: expected });
    else {
      assert.equal(launch.ok, false, JSON.stringify(vars));
      assert.match((launch as { message: string }).message, expected);
    }
  }
});

Deno.test("handshake lines: printed as go-plugin hosts read them, parsed as they would", () => {
  const line = handshakeLine({
    app: 1,
    network: "unix",
    address: "/tmp/plugin123",
    protocol: "grpc",
    cert: "",
  });
  assert.equal(line, "1|1|unix|/tmp/plugin123|grpc|\n");
  assert.deepEqual(parseHandshake(line, [1]), {
    core: 1,
    app: 1,
    network: "unix",
    address: "/tmp/plugin123",
    protocol: "grpc",
    cert: "",
  });
  // go-plugin hosts read field 6 only when longer than 50 characters: shorter is not a cert.
  assert.equal(
    (parseHandshake("1|3|tcp|127.0.0.1:1234|grpc|MIIBabc\r\n", [3]) as { cert: string }).cert,
    "",
  );
  const refused: [string, RegExp][] = [
    ["hello world", /not a go-plugin handshake line: "hello world"/],
    ["2|1|unix|/p|grpc|", /core protocol version/],
    ["1|4|unix|/p|grpc|", /app protocol version is not one offered \(1\)/],
    ["1|x|unix|/p|grpc|", /app protocol version/],
    ["1|1|udp|/p|grpc|", /neither unix nor tcp/],
    ["1|1|unix||grpc|", /no address/],
    ["1|1|unix|/p", /protocol is not grpc/],
    ["1|1|unix|/p|netrpc|", /protocol is not grpc/],
    // AutoMTLS: Go's RawStdEncoding refuses "=", other alphabets and a length of 4n+1.
    [`1|1|unix|/p|grpc|${CERT}=`, /server certificate is not base64 without padding/],
    [`1|1|unix|/p|grpc|${CERT.slice(0, 50)}A==`, /not base64 without padding/],
    [`1|1|unix|/p|grpc|${CERT.replaceAll("+", "-")}`, /not base64 without padding/],
    [`1|1|unix|/p|grpc|${CERT} x`, /not base64 without padding/],
    [`1|1|unix|/p|grpc|${CERT}A`, /not base64 without padding/],
  ];
  for (const [text, expected] of refused) {
    const parsed = parseHandshake(text, [1]);
    assert.equal(typeof parsed, "string", text);
    assert.match(parsed as string, expected);
  }
});

Deno.test("handshake lines under AutoMTLS: the certificate as base64 without padding", () => {
  // Every length mod 3, so that RawStdEncoding's missing "=" shows.
  for (const length of [300, 301, 302]) {
    const der = Uint8Array.from({ length }, (_, i) => (i * 7 + 0x80) % 256);
    const field = certField(der);
    assert.match(field, /^[A-Za-z0-9+/]+$/);
    assert.equal(field.length, Math.ceil(length * 4 / 3));
    const line = handshakeLine({
      app: 1,
      network: "unix",
      address: "/tmp/plugin1",
      protocol: "grpc",
      cert: field,
    });
    assert.equal(line, `1|1|unix|/tmp/plugin1|grpc|${field}\n`);
    const parsed = parseHandshake(line, [1]);
    assert.equal(typeof parsed, "object", String(parsed));
    assert.equal((parsed as { cert: string }).cert, field);
    const padded = field + "=".repeat((4 - field.length % 4) % 4);
    assert.deepEqual(Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)), der);
  }
  assert.equal(
    (parseHandshake(`1|1|unix|/p|grpc|${CERT}\n`, [1]) as { cert: string }).cert,
    CERT,
    "the table's certificate",
  );
});
