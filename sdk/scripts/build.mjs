// `npm install`'s prepare step: compiles the SDK (sdk/src → sdk/dist) with tsc.
// A production install (`npm ci --omit=dev`) has no TypeScript; the server
// does not need the SDK, so the build is skipped there instead of failing.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(import.meta.url);
let tsc;
try {
  tsc = require.resolve("typescript/bin/tsc");
} catch {
  console.log("@phonebook/client: TypeScript is not installed (production install); sdk/dist not built.");
  process.exit(0);
}
const result = spawnSync(process.execPath, [tsc, "-p", join(import.meta.dirname, "..", "tsconfig.json")], {
  stdio: "inherit",
});
process.exit(result.status ?? 1);
