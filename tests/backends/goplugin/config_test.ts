// The backends file: what it declares, and every way it can be wrong, named by key.
import assert from "node:assert/strict";
import { parseBackendsConfig } from "../../../src/backends/goplugin/config.ts";

Deno.test("parseBackendsConfig reads each backend's command and environment", () => {
  const backends = parseBackendsConfig(
    JSON.stringify({
      backends: {
        gobackend: {
          command: ["/usr/local/bin/gobackend", "--root", "/srv"],
          env: { ROOT: "/srv" },
        },
        nfs: { command: ["/opt/nfs-backend"] },
      },
    }),
    "berth.json",
  );
  assert.deepEqual([...backends.keys()], ["gobackend", "nfs"]);
  assert.deepEqual(backends.get("gobackend")!.command, [
    "/usr/local/bin/gobackend",
    "--root",
    "/srv",
  ]);
  assert.equal(backends.get("gobackend")!.env.ROOT, "/srv");
  assert.deepEqual(Object.keys(backends.get("nfs")!.env), []);
});

Deno.test("parseBackendsConfig names the file and the key of the first thing wrong", () => {
  const cases: [string, RegExp][] = [
    ["{", /berth\.json is not JSON/],
    ["[]", /berth\.json: the top level: /],
    ['{"backend": {}}', /berth\.json: the top level: unknown key "backend"/],
    ['{"backends": []}', /berth\.json: backends: must be a map of backend names/],
    [
      '{"backends": {"Go Backend": {"command": ["x"]}}}',
      /backends\.Go Backend: is not a backend name/,
    ],
    ['{"backends": {"go": {}}}', /backends\.go\.command: /],
    ['{"backends": {"go": {"command": []}}}', /backends\.go\.command: must name a program/],
    ['{"backends": {"go": {"command": [""]}}}', /backends\.go\.command\.0: must not be empty/],
    ['{"backends": {"go": {"command": ["x"], "env": {"A": 1}}}}', /backends\.go\.env\.A: /],
    ['{"backends": {"go": {"command": ["x"], "cmd": "y"}}}', /backends\.go: unknown key "cmd"/],
  ];
  for (const [text, expected] of cases) {
    assert.throws(() => parseBackendsConfig(text, "berth.json"), expected, text);
  }
});
