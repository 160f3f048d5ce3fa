// Network namespaces a test makes and always deletes, so the host's own netns is never touched.

import { onPath, rootMissing, skipUnless } from "./skip.ts";

/** The `ignore` value for a test needing root and `ip` (never true under CI; see skip.ts). */
export function skipUnlessNet(testName: string): boolean {
  return skipUnless(testName, rootMissing(), onPath("ip") ? null : "needs iproute2's ip");
}

/** Runs `ip` with `args`; throws with its stderr on failure. */
export async function ip(...args: string[]): Promise<string> {
  const output = await new Deno.Command("ip", { args, stdin: "null" }).output();
  const decoder = new TextDecoder();
  if (!output.success) {
    throw new Error(`ip ${args.join(" ")}: ${decoder.decode(output.stderr).trim()}`);
  }
  return decoder.decode(output.stdout);
}

export type Netns = { name: string } & AsyncDisposable;

/** A fresh namespace with its loopback up; deleting it on dispose deletes every link in it. */
export async function netns(label: string): Promise<Netns> {
  const name = `bthtest-${label}-${crypto.randomUUID().slice(0, 8)}`;
  await ip("netns", "add", name);
  await ip("-n", name, "link", "set", "lo", "up");
  return {
    name,
    async [Symbol.asyncDispose]() {
      await new Deno.Command("ip", { args: ["netns", "del", name], stdin: "null" }).output();
    },
  };
}

/** Names of the links in namespace `name`. */
export async function links(name: string): Promise<string[]> {
  const list = JSON.parse(await ip("-n", name, "-json", "link", "show")) as { ifname: string }[];
  return list.map((link) => link.ifname).sort();
}
