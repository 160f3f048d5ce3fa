import assert from "node:assert/strict";
import { AdminAddressError, parseAdminAddress } from "../../../src/transport/admin/address.ts";

Deno.test("parseAdminAddress takes a socket path and loopback host:port", () => {
  assert.deepEqual(parseAdminAddress("/run/berth/b.sock"), {
    transport: "unix",
    path: "/run/berth/b.sock",
  });
  assert.deepEqual(parseAdminAddress("127.0.0.1:9000"), {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: 9000,
  });
  assert.deepEqual(parseAdminAddress("127.8.9.10:0"), {
    transport: "tcp",
    hostname: "127.8.9.10",
    port: 0,
  });
  assert.deepEqual(parseAdminAddress("[::1]:65535"), {
    transport: "tcp",
    hostname: "::1",
    port: 65535,
  });
  assert.deepEqual(parseAdminAddress("localhost:80"), {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: 80,
  });
});

Deno.test("parseAdminAddress refuses anything another host could reach, saying why", () => {
  const cases: [string, RegExp][] = [
    ["0.0.0.0:9000", /0\.0\.0\.0 is not a loopback address/],
    ["198.18.0.1:9000", /198\.18\.0\.1 is not a loopback address/],
    [":9000", /every address is not a loopback address/],
    ["[::]:9000", /:: is not a loopback address/],
    ["example.com:9000", /example\.com is not a loopback address/],
    ["127.0.0.256:9000", /not a loopback address/],
    ["127.0.0.1:65536", /port "65536" must be 0 to 65535/],
    ["127.0.0.1:x", /port "x"/],
    ["relative/path.sock", /absolute socket path/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseAdminAddress(text), (error: unknown) => {
      assert.ok(error instanceof AdminAddressError, text);
      assert.match(error.message, message, text);
      return true;
    });
  }
});
