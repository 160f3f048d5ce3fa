// --store etcd over TLS: a member that serves https and asks for client certificates
// (--client-cert-auth) takes a Berth that has the CA and its own certificate, and refuses one
// without, which says so in one line at start.
import assert from "node:assert/strict";
import { join } from "node:path";
import { runBerth, spawnBerth } from "../helpers/berth_process.ts";
import { pluginClient } from "../helpers/plugin_socket.ts";
import { onPath, skipUnless } from "../helpers/skip.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { etcdMissing } from "../etcd/_etcd_cluster.ts";

const TEST_NAME = "--store etcd over TLS with client certificates";

async function run(command: string, args: string[], cwd: string) {
  const out = await new Deno.Command(command, { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  assert.equal(
    out.code,
    0,
    `${command} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
  );
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
async function makeCertificates(dir: string) {
  const ssl = (...args: string[]) => run("openssl", args, dir);
  await ssl(
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "1",
    "-subj",
    "/CN=berth-test-ca",
  );
  for (
    const [name, ext] of [[
      "server",
      "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth",
    ], [
      "client",
      "extendedKeyUsage=clientAuth",
    ]] as const
  ) {
    await Deno.writeTextFile(join(dir, `${name}.ext`), `${ext}\n`);
    await ssl(
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=berth-test-${name}`,
    );
    await ssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "1",
      "-extfile",
      `${name}.ext`,
    );
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

Deno.test({
  name: TEST_NAME,
  ignore: skipUnless(TEST_NAME, etcdMissing() ?? (onPath("openssl") ? null : "needs openssl")),
  async fn() {
    await using dir = await tempDir("berth-etcd-tls-");
    await makeCertificates(dir.path);
    const [client, peer] = [freePort(), freePort()];
    const etcd = new Deno.Command("etcd", {
      args: [
        "--name=tls0",
        `--data-dir=${join(dir.path, "data")}`,
        `--listen-client-urls=https://127.0.0.1:${client}`,
        `--advertise-client-urls=https://127.0.0.1:${client}`,
        `--listen-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-cluster=tls0=http://127.0.0.1:${peer}`,
        `--cert-file=${join(dir.path, "server.pem")}`,
        `--key-file=${join(dir.path, "server.key")}`,
        `--trusted-ca-file=${join(dir.path, "ca.pem")}`,
        "--client-cert-auth",
        "--logger=zap",
        `--log-outputs=${join(dir.path, "etcd.log")}`,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const base = [
        "serve",
        ...["--store", "etcd", "--etcd-endpoints", `https://localhost:${client}`],
        ...["--cluster", "tlstest", "--etcd-ca", join(dir.path, "ca.pem")],
      ];
      // Over TLS a member is named by a host name its certificate carries, never an address.
      const byAddress = await runBerth([
        "serve",
        ...["--store", "etcd", "--etcd-endpoints", `https://127.0.0.1:${client}`],
        ...["--etcd-ca", join(dir.path, "ca.pem")],
      ]);
      assert.equal(byAddress.code, 2);
      assert.match(byAddress.stderr, /must be named by a host name its certificate carries/);
      // The member listens once it is ready.
      for (let i = 0;; i++) {
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port: client })).close();
          break;
        } catch (error) {
          if (i === 100) {
            throw new Error(
              `etcd did not listen: ${await Deno.readTextFile(join(dir.path, "etcd.log")).catch(
                () => "",
              )}`,
              { cause: error },
            );
          }
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      // Without a client certificate the member refuses it: one line, exit 1.
      const socket = join(dir.path, "b.sock");
      const refused = await runBerth([
        ...base,
        "--socket",
        socket,
        "--state-dir",
        join(dir.path, "s0"),
      ]);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(
        refused.stderr,
        /^\[INFO\][^\n]*\n\[ERROR\] berth: Store unavailable: [^\n]*\n$/,
      );

      await using berth = spawnBerth([
        ...base,
        ...[
          "--etcd-cert",
          join(dir.path, "client.pem"),
          "--etcd-key",
          join(dir.path, "client.key"),
        ],
        ...["--socket", socket, "--state-dir", join(dir.path, "s1")],
      ]);
      await berth.ready(socket, 30_000);
      using plugin = pluginClient(socket);
      const pool = await plugin.call("IpamDriver.RequestPool", { Pool: "198.18.50.0/24" });
      assert.equal(pool.status, 200, pool.text);
      const address = await plugin.call("IpamDriver.RequestAddress", {
        PoolID: "198.18.50.0/24",
        Address: "",
      });
      assert.deepEqual(address.body, { Address: "198.18.50.1/24", Data: {} });
      berth.kill("SIGTERM");
      assert.equal((await berth.exited()).code, 0, berth.stderr());
    } finally {
      try {
        etcd.kill("SIGKILL");
      } catch { /* it ended already; its log says why */ }
      await etcd.status;
    }
  },
});
