// Building test programs on the real go-plugin library: Debian's go-plugin 1.0.1 and gRPC, in
// GOPATH mode (GO111MODULE=off), with berth.v1 generated from this checkout's proto/.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { onPath } from "../helpers/skip.ts";

const GOPATH = "/usr/share/gocode";
const DEBIAN_PACKAGES = "golang-go golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev " +
  "golang-github-golang-protobuf-1-5-dev golang-google-genproto-dev protobuf-compiler " +
  "protoc-gen-go protoc-gen-go-grpc";
const NEEDED_SOURCES = [
  "src/github.com/hashicorp/go-plugin/client.go",
  "src/google.golang.org/grpc/health/grpc_health_v1/health.pb.go",
];
/** The main.ts under test: another checkout's when BERTH_MAIN says so. */
export const MAIN_TS = Deno.env.get("BERTH_MAIN") ??
  fileURLToPath(new URL("../../main.ts", import.meta.url));
const PROTO_DIR = join(MAIN_TS, "..", "proto");

/** Why Go programs cannot be built here, or null when they can. */
export function goMissing(): string | null {
  for (const tool of ["go", "protoc", "protoc-gen-go", "protoc-gen-go-grpc"]) {
    if (!onPath(tool)) return `${tool} not on PATH (apt-get install ${DEBIAN_PACKAGES})`;
  }
  for (const file of NEEDED_SOURCES) {
    try {
      Deno.statSync(join(GOPATH, file));
    } catch {
      return `${join(GOPATH, file)} missing (apt-get install ${DEBIAN_PACKAGES})`;
    }
  }
  return null;
}

async function run(command: string, args: string[], options: Deno.CommandOptions = {}) {
  const child = new Deno.Command(command, { args, stdout: "piped", stderr: "piped", ...options });
  const out = await child.output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `${command} ${args.join(" ")} failed: ${stderr}`);
}

/** Go code for berth.v1 from proto/, in dir/gopath/src/berth/v1 (imported as "berth/v1"). */
export async function generateBerthV1(dir: string): Promise<void> {
  const src = join(dir, "gopath", "src");
  await Deno.mkdir(src, { recursive: true });
  const protos = ["volume", "ipam", "network", "backend"].map((p) => `berth/v1/${p}.proto`);
  await run("protoc", [`--go_out=${src}`, `--go-grpc_out=${src}`, "-I", PROTO_DIR, ...protos]);
}

/** Builds ./<name>/ into dir/<name>, in GOPATH mode over dir/gopath and Debian's sources. */
export async function buildGo(dir: string, name: string): Promise<string> {
  const bin = join(dir, name);
  await run("go", ["build", "-o", bin, "."], {
    cwd: fileURLToPath(new URL(`./${name}`, import.meta.url)), // GOPATH mode: no absolute package
    env: {
      GO111MODULE: "off",
      GOPATH: `${join(dir, "gopath")}:${GOPATH}`,
      GOCACHE: join(dir, "gocache"),
      GOFLAGS: "",
    },
  });
  return bin;
}
