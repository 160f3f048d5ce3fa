import assert from "node:assert/strict";
import {
  EffectFailedError,
  IllegalStateError,
  InvalidRequestError,
  NotFoundError,
  UnavailableError,
} from "../../../src/engine/errors.ts";
import { callLine, entityOf } from "../../../src/transport/docker/call_log.ts";

const NETWORK = "c599867bf155fff9018f995a80bb4f4b8bbee9c70a3b2c294a331ebb5dd8c2bb";
const ENDPOINT = "9d1e6b53a0c2f4e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4";

Deno.test("a call is named by what a docker user knows", () => {
  const rows: [string, unknown, string][] = [
    ["VolumeDriver.Create", { Name: "db", Opts: { mode: "0700" } }, 'volume "db"'],
    ["VolumeDriver.Mount", { Name: "db", ID: ENDPOINT }, 'volume "db" (mount 9d1e6b53a0c2)'],
    ["VolumeDriver.Mount", { Name: "db", ID: "not hex" }, 'volume "db" (mount "not hex")'],
    ["VolumeDriver.Create", { Name: "x".repeat(300) }, `volume "${"x".repeat(64)}…"`],
    ["VolumeDriver.List", {}, ""],
    ["VolumeDriver.Get", { Name: 7 }, ""],
    ["NetworkDriver.CreateNetwork", { NetworkID: NETWORK }, "network c599867bf155"],
    [
      "NetworkDriver.Join",
      { NetworkID: NETWORK, EndpointID: ENDPOINT, SandboxKey: "/x" },
      "endpoint 9d1e6b53a0c2 of network c599867bf155",
    ],
    ["IpamDriver.RequestPool", { Pool: "198.18.4.0/24" }, 'pool "198.18.4.0/24"'],
    ["IpamDriver.RequestPool", { Pool: "" }, ""],
    [
      "IpamDriver.RequestAddress",
      { PoolID: "198.18.4.0/24", Address: "198.18.4.7" },
      'address "198.18.4.7" in pool "198.18.4.0/24"',
    ],
    ["IpamDriver.RequestAddress", { PoolID: "198.18.4.0/24", Address: "" }, 'pool "198.18.4.0/24"'],
    ["Plugin.Activate", {}, ""],
    ["VolumeDriver.Create", { __proto__: { Name: "inherited" } }, ""],
  ];
  for (const [method, body, entity] of rows) {
    assert.equal(entityOf(method, body), entity, `${method} ${JSON.stringify(body)}`);
  }
});

Deno.test("changes and refusals at info, reads at debug, failures louder", () => {
  const rows: [string, unknown, string, string][] = [
    ["VolumeDriver.Create", null, "INFO", 'VolumeDriver.Create volume "db": ok in 1.5 ms'],
    ["VolumeDriver.Get", null, "DEBUG", 'VolumeDriver.Get volume "db": ok in 1.5 ms'],
    [
      "VolumeDriver.Remove",
      new IllegalStateError('Cannot remove volume "db": in use by 1 mount'),
      "INFO",
      'VolumeDriver.Remove volume "db": refused in 1.5 ms: Cannot remove volume "db": in use by 1 mount',
    ],
    [
      "VolumeDriver.Get",
      new NotFoundError('Volume "db" not found'),
      "INFO",
      'VolumeDriver.Get volume "db": refused in 1.5 ms: Volume "db" not found',
    ],
    [
      "VolumeDriver.Create",
      new InvalidRequestError("bad"),
      "INFO",
      'VolumeDriver.Create volume "db": refused in 1.5 ms: bad',
    ],
    [
      "VolumeDriver.Mount",
      new EffectFailedError("disk says no"),
      "WARN",
      'VolumeDriver.Mount volume "db": failed in 1.5 ms: disk says no',
    ],
    [
      "VolumeDriver.Mount",
      new UnavailableError("Cannot record events: the disk is full"),
      "ERROR",
      'VolumeDriver.Mount volume "db": failed in 1.5 ms: Cannot record events: the disk is full',
    ],
    [
      "unknown",
      "Unknown method POST /Nope",
      "INFO",
      "unknown: refused in 1.5 ms: Unknown method POST /Nope",
    ],
  ];
  for (const [method, error, level, message] of rows) {
    const line = callLine(method, method === "unknown" ? undefined : { Name: "db" }, error, 0.0015);
    assert.equal(line.level, level, message);
    assert.equal(line.message, message);
    assert.equal(line.fields.ms, 1.5);
    assert.equal(
      line.fields.outcome,
      error === null ? "ok" : /refused/.test(message) ? "refused" : "failed",
    );
  }
});
