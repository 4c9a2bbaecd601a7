// Builds dist/ (the compiled JavaScript that `npm start`, the `phonebook`
// command and the bench run) with `tsc -p tsconfig.build.json`, when it is
// missing or older than the sources. `npm install` / `npm ci` run it through
// the `prepare` script; `node bin/build.js` does it by hand (`--force`:
// whatever the timestamps say). docs/build.md.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const STAMP = join(ROOT, "dist", ".built");
const INPUTS = ["src", "bench", "tsconfig.json", "tsconfig.build.json", "package.json"];

function newestMtime(path) {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const name of readdirSync(path)) {
    // bench/results holds reference runs, not sources.
    if (name !== "results") newest = Math.max(newest, newestMtime(join(path, name)));
  }
  return newest;
}

/** True when dist/ is missing or a source is newer than the last build. */
export function isStale() {
  const built = statSync(STAMP, { throwIfNoEntry: false });
  if (!built) return true;
  return INPUTS.some((input) => newestMtime(join(ROOT, input)) > built.mtimeMs);
}

/** The TypeScript compiler, or undefined when it is not installed (a production-only install). */
function tscPath() {
  try {
    return createRequire(join(ROOT, "package.json")).resolve("typescript/bin/tsc");
  } catch {
    return undefined;
  }
}

/**
 * Builds dist/ if it is stale. Returns "built", "fresh", or "unavailable"
 * (no TypeScript compiler installed and dist/ stale or missing). Throws when
 * the compiler reports errors.
 */
export function ensureBuilt({ force = false, log = (line) => process.stderr.write(`${line}\n`) } = {}) {
  if (!force && !isStale()) return "fresh";
  const tsc = tscPath();
  if (!tsc) return "unavailable";
  log("phonebook: compiling TypeScript to dist/ (tsc -p tsconfig.build.json)…");
  const result = spawnSync(process.execPath, [tsc, "-p", join(ROOT, "tsconfig.build.json")], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (result.status !== 0) throw new Error(`tsc failed (exit ${result.status ?? result.signal})`);
  writeFileSync(STAMP, `${new Date().toISOString()}\n`);
  return "built";
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    const outcome = ensureBuilt({ force: process.argv.includes("--force") });
    if (outcome === "unavailable" && !existsSync(STAMP)) {
      console.error("phonebook: TypeScript is not installed; dist/ cannot be built (npm install)");
      process.exit(1);
    }
  } catch (error) {
    console.error(`phonebook: ${error.message}`);
    process.exit(1);
  }
}
