// The Docker plugin API as dockerd speaks it: content type, activation manifest, error key.

/** The media type dockerd sends in Accept; every reply carries it. */
export const PLUGIN_CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json";

/** The plugin interfaces dockerd knows; `/Plugin.Activate` lists those Berth serves routes of. */
export const PLUGIN_INTERFACES = ["VolumeDriver", "NetworkDriver", "IpamDriver"] as const;

/** dockerd reads an IPAM error from `Error`, every other error from `Err`. */
export function wantsErrorKey(path: string): boolean {
  return path.startsWith("/IpamDriver.");
}
