import assert from "node:assert/strict";
import {
  npmClosure,
  sharedLibraries,
  splitPackageKey,
  trimManifests,
} from "../../tools/_rootfs.ts";

const LOCK = {
  "@grpc/grpc-js@1.14.7": { dependencies: ["@grpc/proto-loader", "long"] },
  "@grpc/proto-loader@0.8.1": { dependencies: ["long"] },
  "cose-base@1.0.3": { dependencies: ["layout-base@1.0.2"] },
  "layout-base@1.0.2": {},
  "layout-base@2.0.1": {},
  "long@5.3.2": {},
  "mermaid@11.17.2": { dependencies: ["cose-base@1.0.3"] },
  "zod@4.6.7": {},
};

Deno.test("splitPackageKey reads scoped names and drops peer suffixes", () => {
  assert.deepEqual(splitPackageKey("@grpc/grpc-js@1.14.7"), {
    name: "@grpc/grpc-js",
    version: "1.14.7",
  });
  assert.deepEqual(splitPackageKey("cytoscape-fcose@2.2.0_cytoscape@3.35.0"), {
    name: "cytoscape-fcose",
    version: "2.2.0",
  });
  assert.throws(() => splitPackageKey("zod"), /no version/);
});

Deno.test("npmClosure follows bare names and whole keys, and nothing else", () => {
  assert.deepEqual(npmClosure(LOCK, ["@grpc/grpc-js@1.14.7", "zod@4.6.7"]), [
    "@grpc/grpc-js@1.14.7",
    "@grpc/proto-loader@0.8.1",
    "long@5.3.2",
    "zod@4.6.7",
  ]);
  assert.deepEqual(npmClosure(LOCK, ["mermaid@11.17.2"]), [
    "cose-base@1.0.3",
    "layout-base@1.0.2",
    "mermaid@11.17.2",
  ]);
});

Deno.test("npmClosure refuses a name the lock holds twice or not at all", () => {
  assert.throws(
    () => npmClosure({ "a@1.0.0": { dependencies: ["layout-base"] }, ...LOCK }, ["a@1.0.0"]),
    /Cannot resolve "layout-base"/,
  );
  assert.throws(() => npmClosure(LOCK, ["nope@1.0.0"]), /Cannot find npm package "nope@1.0.0"/);
});

Deno.test("trimManifests names only the packages kept, in imports, specifiers and workspace", () => {
  const denoJson = {
    imports: {
      "zod": "npm:zod@4.6.7",
      "@grpc/grpc-js": "npm:@grpc/grpc-js@1.14.7",
      "mermaid": "npm:mermaid@11.17.2",
      "xstate/graph": "npm:xstate@5.33.3/graph",
    },
    tasks: { test: "deno test" },
    compilerOptions: { strict: true },
    nodeModulesDir: "none",
  };
  const lock = {
    version: "5",
    specifiers: {
      "npm:zod@4.6.7": "4.6.7",
      "npm:@grpc/grpc-js@1.14.7": "1.14.7",
      "npm:mermaid@11.17.2": "11.17.2",
    },
    npm: LOCK,
    workspace: {
      dependencies: ["npm:@grpc/grpc-js@1.14.7", "npm:mermaid@11.17.2", "npm:zod@4.6.7"],
    },
  };
  const keys = npmClosure(LOCK, ["@grpc/grpc-js@1.14.7", "zod@4.6.7"]);
  const trimmed = trimManifests(denoJson, lock, keys);
  assert.deepEqual(trimmed.config, {
    imports: { "zod": "npm:zod@4.6.7", "@grpc/grpc-js": "npm:@grpc/grpc-js@1.14.7" },
    compilerOptions: { strict: true },
    nodeModulesDir: "none",
  });
  assert.deepEqual(Object.keys(trimmed.lock.specifiers), [
    "npm:zod@4.6.7",
    "npm:@grpc/grpc-js@1.14.7",
  ]);
  assert.deepEqual(Object.keys(trimmed.lock.npm), keys);
  assert.deepEqual(trimmed.lock.workspace.dependencies, [
    "npm:@grpc/grpc-js@1.14.7",
    "npm:zod@4.6.7",
  ]);
  assert.equal(trimmed.lock.version, "5");
});

Deno.test({
  name: "sharedLibraries lists the loader and libc of /bin/sh",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const libraries = await sharedLibraries("/bin/sh");
    assert.ok(libraries.some((path) => /\/ld-linux[^/]*\.so/.test(path)), libraries.join(" "));
    assert.ok(libraries.some((path) => /\/libc\.so\.6$/.test(path)), libraries.join(" "));
    assert.ok(libraries.every((path) => path.startsWith("/")));
  },
});
