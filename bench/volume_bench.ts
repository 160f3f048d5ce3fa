// The old entry of `deno task bench`, kept until deno.json runs bench/main.ts; delete it then.
import { runBench } from "./main.ts";

Deno.exit(await runBench());
