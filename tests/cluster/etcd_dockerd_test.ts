// Two nodes of a cluster whose log is a real three-member etcd, each the plugin of its own real
// dockerd (tests/e2e/_dockerd.ts), driven only through the docker CLI. Each dockerd runs in a mount
// namespace of its own and finds its node's socket, and only that one, under the one plugin name.
//
// Volumes work across daemons: made on A, B lists it (scope global); B refuses to remove it while a
// container on A holds it, and to mount it at all, since a local-dir volume's data is on node a.
//
// Networks do not, on dockerd 20.10 outside swarm mode: a driver of scope global needs a global
// store (swarm, or the cluster store of old). libnetwork asks Berth for the pool, an address and the
// network, then fails to store the network (ErrDataStoreNotInitialized), rolls all of it back, and
// dockerd says "not a swarm manager". In swarm mode (tried by hand, not here: it listens on
// [::]:2377) swarmkit refuses the legacy plugin outright: "legacy plugin NAME of type NetworkDriver
// is not supported in swarm mode". This test pins the refusal and that nothing is left behind.
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Dockerd, dockerdAvailable, startDockerd } from "../e2e/_dockerd.ts";
import { type BerthProcess, spawnBerth } from "../helpers/berth_process.ts";
import { pluginClient } from "../helpers/plugin_socket.ts";
import { onPath, skipUnless } from "../helpers/skip.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { until } from "../helpers/wait.ts";
import { etcdMissing, startEtcdCluster } from "../etcd/_etcd_cluster.ts";
import { nodeArgs } from "./_node.ts";

const NOT_SWARM_MANAGER =
  'Error response from daemon: This node is not a swarm manager. Use "docker ' +
  'swarm init" or "docker swarm join" to connect this node to swarm and try again.\n';

const ORPHAN_WARNING_REGEXP = /\[WARN\] berth: \w+ bth\w+ has Berth's name but no network/;

function log(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`${line}\n`));
}

function dockerdMissing(): string | null {
  const { ok, why } = dockerdAvailable();
  if (!ok) return why;
  return onPath("unshare") ? null : "needs unshare (util-linux)";
}

async function linkNames(): Promise<string[]> {
  const out = await new Deno.Command("ip", { args: ["-o", "link"], stdin: "null" }).output();
  return new TextDecoder().decode(out.stdout).split("\n")
    .flatMap((line) => line.match(/^\d+: ([^:@\s]+)[@:]/)?.[1] ?? []);
}

async function volumeNames(d: Dockerd, driver: string): Promise<string[]> {
  const out = await d.docker(["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]);
  return out.stdout.split("\n").filter((line) => line.startsWith(`${driver} `))
    .map((line) => line.slice(driver.length + 1)).sort();
}

type Volume = { Driver: string; Scope: string; Mountpoint: string; Status: unknown };

async function inspectVolume(d: Dockerd, name: string): Promise<Volume> {
  return JSON.parse((await d.docker(["volume", "inspect", "--format", "{{json .}}", name])).stdout);
}

async function networkNames(d: Dockerd): Promise<string[]> {
  const out = await d.docker(["network", "ls", "--format", "{{.Name}}"]);
  return out.stdout.split("\n").filter(Boolean).sort();
}

const NAME =
  "two real dockerds on an etcd cluster: volumes are shared and guarded, networks refused";

Deno.test({
  name: NAME,
  ignore: skipUnless(NAME, etcdMissing(), dockerdMissing()),
  async fn(t) {
    const plugin = `berth-cl-${crypto.randomUUID().slice(0, 8)}`;
    const linksAtStart = new Set(await linkNames());
    const berths: BerthProcess[] = [];
    const dockerds: Dockerd[] = [];
    await using etcd = await startEtcdCluster();
    await using dir = await tempDir("berth-cluster-dockerd-");
    const pluginDir = (node: string) => join(dir.path, `plugins-${node}`);
    const socket = (node: string) => join(pluginDir(node), `${plugin}.sock`);
    const cluster = { endpoints: etcd.endpoints, name: "dockerdtest" };
    // The underlay address is never used: no container ever joins a Berth network here.
    const extra = ["--advertise-address", "127.0.0.1"];
    const step = async (name: string, fn: () => Promise<void>) => {
      if (!await t.step(name, fn)) throw new Error(`Step failed: ${name}`);
    };
    try {
      for (const node of ["a", "b"]) {
        await Deno.mkdir(pluginDir(node));
        berths.push(spawnBerth(nodeArgs(dir.path, node, cluster, extra, socket(node))));
      }
      await Promise.all(berths.map((berth, i) => berth.ready(socket(["a", "b"][i]!))));
      for (const node of ["a", "b"]) {
        const label = `[dockerd ${node.toUpperCase()}]`;
        dockerds.push(
          await startDockerd({
            log: (line) => log(`${label} ${line}`),
            pluginDir: pluginDir(node),
          }),
        );
      }
      const [A, B] = dockerds as [Dockerd, Dockerd];
      const data = join(dir.path, "a", "volumes", "v1", "_data");
      const run = (d: Dockerd, ...args: string[]) =>
        d.docker(["run", "--network", "none", "-v", "v1:/data", ...args], { check: false });

      await step("a volume made on A is listed and inspected on B, scope global", async () => {
        assert.equal((await A.docker(["volume", "create", "-d", plugin, "v1"])).stdout, "v1\n");
        await until("B to list v1", async () => (await volumeNames(B, plugin)).includes("v1"));
        const onB = await inspectVolume(B, "v1");
        assert.deepEqual(
          [onB.Driver, onB.Scope, onB.Mountpoint, onB.Status],
          [plugin, "global", data, { state: "unmounted", mounts: 0, nodes: {} }],
        );
      });

      await step("B refuses volume rm while a container on A holds it", async () => {
        assert.equal((await run(A, "--rm", A.image, "sh", "-c", "echo hi > /data/f")).code, 0);
        assert.equal(await Deno.readTextFile(join(data, "f")), "hi\n");
        const holder = await run(A, "-d", "--name", "holder", A.image, "sleep", "1000");
        assert.equal(holder.code, 0, holder.stderr);
        await until("B to see a's mount", async () => {
          const { Status } = await inspectVolume(B, "v1");
          return JSON.stringify(Status) === '{"mounts":1,"nodes":{"a":1},"state":"mounted"}';
        });
        const refused = await B.docker(["volume", "rm", "v1"], { check: false });
        assert.deepEqual([refused.code, refused.stdout, refused.stderr], [
          1,
          "",
          'Error response from daemon: remove v1: VolumeDriver.Remove: Cannot remove volume "v1": ' +
          'in use by 1 mount on node "a"\n',
        ]);
        assert.deepEqual(await volumeNames(A, plugin), ["v1"]);
        assert.deepEqual(await volumeNames(B, plugin), ["v1"]);
      });

      await step("a container on B with the volume is refused, naming node a", async () => {
        const refused = await run(B, "--rm", B.image, "cat", "/data/f");
        // dockerd puts the volume's Path (a's directory, which Berth on b reports) before Berth's.
        assert.deepEqual([refused.code, refused.stdout, refused.stderr], [
          125,
          "",
          `docker: Error response from daemon: error while mounting volume '${data}': ` +
          'VolumeDriver.Mount: Cannot mount volume "v1": its data is on node "a" (a local ' +
          "directory there); mount it on that node\n\nRun 'docker run --help' for more " +
          "information\n",
        ]);
        assert.equal((await B.docker(["ps", "-aq"])).stdout, "", "B kept the refused container");
        assert.equal(await Deno.readTextFile(join(data, "f")), "hi\n");
      });

      await step("once A's container is gone B still may not remove it; A does", async () => {
        await A.docker(["stop", "-t", "1", "holder"]);
        await A.docker(["rm", "holder"]);
        await until("B to see the unmount", async () => {
          const { Status } = await inspectVolume(B, "v1");
          return JSON.stringify(Status) === '{"mounts":0,"nodes":{},"state":"unmounted"}';
        });
        const refused = await B.docker(["volume", "rm", "v1"], { check: false });
        assert.deepEqual([refused.code, refused.stderr], [
          1,
          'Error response from daemon: remove v1: VolumeDriver.Remove: Cannot remove volume "v1": ' +
          'its data is on node "a" (a local directory there); remove it on that node\n',
        ]);
        assert.equal((await A.docker(["volume", "rm", "v1"])).stdout, "v1\n");
        await until("B to forget v1", async () => (await volumeNames(B, plugin)).length === 0);
        assert.deepEqual(await volumeNames(A, plugin), []);
        await assert.rejects(Deno.stat(join(dir.path, "a", "volumes", "v1")), Deno.errors.NotFound);
      });

      await step(
        "outside swarm mode dockerd refuses a Berth network; nothing is left",
        async () => {
          const [x] = crypto.getRandomValues(new Uint8Array(1)).map((n) => 128 + (n % 120));
          const subnet = `198.18.${x}.0/24`;
          const networksBefore = [await networkNames(A), await networkNames(B)];
          const create = ["network", "create", "-d", plugin, "--ipam-driver", plugin];
          const refused = await A.docker([...create, "--subnet", subnet, "n1"], { check: false });
          assert.deepEqual([refused.code, refused.stdout, refused.stderr], [
            1,
            "",
            NOT_SWARM_MANAGER,
          ]);
          // --attachable changes nothing; --scope local is refused before the driver is asked.
          const attachable = await A.docker([...create, "--attachable", "--subnet", subnet, "n1"], {
            check: false,
          });
          assert.deepEqual([attachable.code, attachable.stderr], [1, NOT_SWARM_MANAGER]);
          const local = await A.docker([...create, "--scope", "local", "--subnet", subnet, "n1"], {
            check: false,
          });
          assert.deepEqual([local.code, local.stderr], [
            1,
            `Error response from daemon: cannot downgrade network scope for ${plugin} networks\n`,
          ]);
          assert.deepEqual([await networkNames(A), await networkNames(B)], networksBefore);
          // Berth did make the network, and undid it when libnetwork rolled back.
          const calls = () =>
            berths[0]!.stderr().split("\n").flatMap((line) =>
              line.match(/berth: ((Ipam|Network)Driver\.\w+) [^:]*: ok in/)?.[1] ?? []
            );
          await until("Berth's log of the rollback", () => calls().length >= 12);
          const once = [
            "IpamDriver.RequestPool",
            "IpamDriver.RequestAddress",
            "NetworkDriver.CreateNetwork",
            "NetworkDriver.DeleteNetwork",
            "IpamDriver.ReleaseAddress",
            "IpamDriver.ReleasePool",
          ];
          assert.deepEqual(calls(), [...once, ...once]);
          const newLinks = (await linkNames()).filter((n) =>
            n.startsWith("bth") && !linksAtStart.has(n)
          );
          assert.deepEqual(newLinks, [], "Berth links left on the host");
          // The pool is free for the whole cluster: node b may take it, and gives it back.
          using onB = pluginClient(socket("b"));
          const pool = await onB.call("IpamDriver.RequestPool", {
            AddressSpace: "GlobalDefault",
            Pool: subnet,
          });
          assert.equal(pool.status, 200, pool.text);
          const release = await onB.call("IpamDriver.ReleasePool", {
            PoolID: (pool.body as { PoolID: string }).PoolID,
          });
          assert.equal(release.status, 200, release.text);
        },
      );

      for (const berth of berths) {
        assert.deepEqual(
          // Less reports of stray bth* links: the host netns is shared with other runs.
          berth.stderr().split("\n").filter((line) =>
            /\[(WARN|ERROR)\]/.test(line) && !ORPHAN_WARNING_REGEXP.test(line)
          ),
          [],
          "Berth warned or failed",
        );
      }
    } finally {
      // The dockerds first: they remove leftover containers while Berth still answers Unmount.
      for (const d of dockerds) await d.stop().catch((error) => log(String(error)));
      for (const berth of berths) {
        berth.kill("SIGKILL");
        await berth.exited();
        log(`[berth ${berth.child.pid} stderr]\n${berth.stderr().trimEnd()}`);
      }
      for (const name of await linkNames()) {
        if (!name.startsWith("bth") || linksAtStart.has(name)) continue;
        log(`removing leftover link ${name}`);
        await new Deno.Command("ip", { args: ["link", "del", "dev", name] }).output();
      }
    }
  },
});
