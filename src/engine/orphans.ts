// Links with Berth's prefix that no network or endpoint actor owns: left by a crash between an
// effect and its record, or by someone else's hand. Reported; removed only when asked to.
import { BERTH_LINK_PREFIX, type NetPlumbing } from "../backends/net_plumbing.ts";
import { vxlanName } from "../backends/vxlan_plumbing.ts";
import type { Engine } from "./engine.ts";

export type OrphanReport = { name: string; kind: string; removed: boolean }[];

/**
 * Finds Berth-named links no actor owns; with `repair`, deletes them. Links tagged by another
 * Berth (another state dir on this host) are that Berth's business and are skipped; untagged ones
 * are debris of a crash between making a link and tagging it. Nothing else is touched.
 */
export async function sweepOrphanLinks(
  engine: Engine,
  plumbing: NetPlumbing,
  options: { owner: string; repair: boolean },
): Promise<OrphanReport> {
  const { owner, repair } = options;
  const owned = new Set<string>();
  for (const [, snapshot] of engine.list("network")) {
    owned.add(snapshot.context.bridge);
    // On a cluster, its VXLAN device to the other nodes.
    owned.add(vxlanName(snapshot.context.id));
  }
  for (const [, snapshot] of engine.list("endpoint")) {
    const { host, peer } = snapshot.context;
    owned.add(host);
    owned.add(peer);
  }
  const report: OrphanReport = [];
  for (const link of await plumbing.listLinks(BERTH_LINK_PREFIX)) {
    if (owned.has(link.name)) continue;
    if (link.owner !== null && link.owner !== owner) continue;
    // A veth peer goes with its host end; deleting the host end is enough.
    if (repair && link.kind === "bridge") {
      await plumbing.deleteBridge(link.name, { orUntagged: true });
    } else if (repair && link.kind === "veth") await plumbing.deleteVeth(link.name);
    report.push({ name: link.name, kind: link.kind, removed: repair });
  }
  return report;
}
