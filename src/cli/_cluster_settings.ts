// The settings of a Berth that is one node of a cluster: where etcd is, how to reach it (TLS),
// the cluster's and this node's names, and the node's underlay address for VXLAN.
import { CommandError, setting, UsageError } from "./_command.ts";

/** The flags these come from (each also read from BERTH_<FLAG>). */
export type ClusterFlags = Partial<
  Record<
    | "store"
    | "etcd-endpoints"
    | "cluster"
    | "node"
    | "etcd-ca"
    | "etcd-cert"
    | "etcd-key",
    string
  >
>;

/** --store etcd: the members (`host:port`), the cluster, this node and TLS (PEM). */
export type EtcdSettings = {
  endpoints: string[];
  cluster: string;
  node: string;
  tls?: { ca: string; cert?: string; key?: string };
};

const IPV4_REGEXP = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** --advertise-address, checked: an IPv4 address, and only with --store etcd; null when absent. */
export function advertiseSetting(flag: string | undefined, onEtcd: boolean): string | null {
  const text = setting(flag, "BERTH_ADVERTISE_ADDRESS", "");
  if (text === "") return null;
  if (!IPV4_REGEXP.test(text)) {
    throw new UsageError(`advertise address "${text}" must be an IPv4 address`);
  }
  // The env may be set host-wide: only the flag itself is refused without etcd.
  if (!onEtcd && flag !== undefined) throw new UsageError("--advertise-address needs --store etcd");
  return onEtcd ? text : null;
}

/** --store and the etcd settings, checked: null for the file store. */
export function etcdSetting(values: ClusterFlags): EtcdSettings | null {
  const store = setting(values.store, "BERTH_STORE", "file");
  if (store === "file") return null;
  if (store !== "etcd") throw new UsageError(`store "${store}" must be file or etcd`);
  const list = setting(values["etcd-endpoints"], "BERTH_ETCD_ENDPOINTS", "");
  const schemes = new Set<string>();
  const endpoints = list.split(",").filter((text) => text !== "").map((text) => {
    const match = /^(?:(https?):\/\/)?([\w.-]+|\[[\da-f:]+\]):(\d{1,5})\/?$/i.exec(text.trim());
    if (!match) throw new UsageError(`etcd endpoint "${text}" must be http(s)://HOST:PORT`);
    schemes.add((match[1] ?? "http").toLowerCase());
    if (Number(match[3]) < 1 || Number(match[3]) > 65535) {
      throw new UsageError(`etcd endpoint "${text}" has no such port`);
    }
    return `${match[2]}:${match[3]}`;
  });
  if (schemes.size > 1) throw new UsageError("etcd endpoints must be all http:// or all https://");
  const file = (flag: "etcd-ca" | "etcd-cert" | "etcd-key") => {
    const path = setting(values[flag], `BERTH_${flag.toUpperCase().replace("-", "_")}`, "");
    if (path === "") return undefined;
    try {
      return Deno.readTextFileSync(path);
    } catch (error) {
      throw new CommandError(`cannot read --${flag} ${path}: ${(error as Error).message}`);
    }
  };
  const [ca, cert, key] = [file("etcd-ca"), file("etcd-cert"), file("etcd-key")];
  const https = schemes.has("https");
  if (https && ca === undefined) throw new UsageError("https:// etcd endpoints need --etcd-ca");
  const byAddress = endpoints.find((endpoint) => /^(\d{1,3}(\.\d{1,3}){3}|\[.*\]):/.test(endpoint));
  if (https && byAddress !== undefined) {
    // Deno's TLS client takes no IP address as the name to check a certificate against.
    throw new UsageError(
      `https etcd endpoint "${byAddress}" must be named by a host name its certificate carries, ` +
        `not an IP address`,
    );
  }
  if (!https && (ca ?? cert ?? key) !== undefined) {
    throw new UsageError("--etcd-ca, --etcd-cert and --etcd-key need https:// endpoints");
  }
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError("--etcd-cert and --etcd-key go together");
  }
  if (endpoints.length === 0) throw new UsageError("--store etcd needs --etcd-endpoints");
  const cluster = setting(values.cluster, "BERTH_CLUSTER", "berth");
  if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(cluster)) {
    throw new UsageError(`cluster "${cluster}" must match [a-z0-9][a-z0-9_-]*`);
  }
  const node = setting(values.node, "BERTH_NODE", Deno.hostname());
  if (!/^[\w.-]{1,64}$/.test(node)) throw new UsageError(`node "${node}" must match [\\w.-]+`);
  const tls = https
    ? { ca: ca!, ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key }) }
    : undefined;
  return { endpoints, cluster, node, ...(tls ? { tls } : {}) };
}
