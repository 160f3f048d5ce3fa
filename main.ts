// Berth's entry point: the commands live in src/cli/, the wiring of a running Berth in
// src/start_berth.ts.
import { main } from "./src/cli/main.ts";

if (import.meta.main) Deno.exit(await main(Deno.args));
