#!/usr/bin/env node
// The `phonebook` command (and `npm start`): runs the compiled JavaScript in
// dist/, rebuilding it first when the sources are newer (bin/build.js). When
// no TypeScript compiler is installed and dist/ is stale or missing, the
// sources run through tsx's loader instead (slower to start, ~35 MB more RSS).
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ensureBuilt, ROOT } from "./build.js";

let outcome;
try {
  outcome = ensureBuilt();
} catch (error) {
  console.error(`phonebook: ${error.message}; fix the error above, or run the sources with \`npm run dev\``);
  process.exit(1);
}
if (outcome === "unavailable") {
  const { register } = await import("tsx/esm/api");
  register();
  await import(pathToFileURL(join(ROOT, "src", "cli", "main.ts")).href);
} else {
  await import(pathToFileURL(join(ROOT, "dist", "src", "cli", "main.js")).href);
}
