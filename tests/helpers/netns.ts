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

/**
 * Writes `<dir>/ip`, an `ip` that loses a race once: the first command whose arguments contain
 * `during` finds link `vanish` deleted under it (really deleted, in netns `ns`) and fails as the
 * kernel answers then, "RTNETLINK answers: No such device". Every other command is the real ip.
 */
export async function racingIp(
  dir: string,
  options: { during: string; vanish: string; ns: string },
): Promise<string> {
  const real = (await new Deno.Command("sh", { args: ["-c", "command -v ip"] }).output()).stdout;
  const path = `${dir}/ip`;
  const mark = `${dir}/ip.raced`;
  await Deno.writeTextFile(
    path,
    `#!/bin/sh
case " $* " in
  *"${options.during}"*)
    if [ ! -e "${mark}" ]; then
      : > "${mark}"
      ${new TextDecoder().decode(real).trim()} -n "${options.ns}" link del dev "${options.vanish}"
      echo "RTNETLINK answers: No such device" >&2
      exit 2
    fi ;;
esac
exec ${new TextDecoder().decode(real).trim()} "$@"
`,
    { mode: 0o755 },
  );
  return path;
}

/** Whether racingIp's race happened. */
export async function raced(dir: string): Promise<boolean> {
  return await Deno.stat(`${dir}/ip.raced`).then(() => true, () => false);
}

/** What a scenario made outside its namespaces' own links: the namespaces, and root-side links. */
export type Made = { netns: string[]; rootLinks: string[] };

/**
 * Runs `scenario`, then, whatever happened, deletes the root-side links it listed (a link goes with
 * its namespace, but the kernel cleans a namespace up a moment later) and checks that no namespace
 * it made, nor its /run/netns mount, nor any of those links is left; a scenario's own failure is
 * thrown first.
 */
export async function leavingNothing(scenario: (made: Made) => Promise<void>): Promise<void> {
  const made: Made = { netns: [], rootLinks: [] };
  let failure: unknown = null;
  try {
    await scenario(made);
  } catch (error) {
    failure = error;
  }
  for (const link of made.rootLinks) {
    await new Deno.Command("ip", { args: ["link", "del", link], stdin: "null" }).output();
  }
  const names = await ip("netns", "list");
  const rootLinks = (JSON.parse(await ip("-json", "link", "show")) as { ifname: string }[])
    .map((link) => link.ifname);
  const mounted = (name: string) => {
    try {
      Deno.statSync(`/run/netns/${name}`);
      return true;
    } catch {
      return false;
    }
  };
  const left = [
    ...made.netns.filter((name) => names.includes(name)).map((name) => `netns ${name}`),
    ...made.netns.filter(mounted).map((name) => `mount ${name}`),
    ...made.rootLinks.filter((link) => rootLinks.includes(link)).map((link) => `link ${link}`),
  ];
  if (failure !== null) throw failure;
  if (left.length > 0) throw new Error(`Left behind: ${left.join(", ")}`);
}
