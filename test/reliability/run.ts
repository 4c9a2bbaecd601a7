/**
 * `npm run test:reliability`: the reliability and security suite at full
 * scale (PB_RELIABILITY=1): the fast parts that `npm test` also runs
 * (test/reliability/*.test.ts, with many more fuzz runs, isolation sequences
 * and kills), then the slow parts `npm test` does not collect
 * (test/reliability/*.reliability.ts: the soak), one file at a time so the
 * soak has the machine to itself. Probes PostgreSQL and Redis like
 * test/run.ts; with CI=true a missing server is a failure. Arguments filter
 * files by substring, e.g. `npm run test:reliability -- soak`.
 */
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { PG_ADMIN_URL, REDIS_URL } from "../helpers/env.ts";
import { pgAvailable, redisAvailable } from "../helpers/probe.ts";

const ci = process.env.CI === "true";
const [pgProblem, redisProblem] = await Promise.all([pgAvailable(), redisAvailable()]);
const skipped: string[] = [];
if (pgProblem)
  skipped.push(`PostgreSQL at ${PG_ADMIN_URL} (${pgProblem}): SQLite only, no PostgreSQL outage test`);
if (redisProblem) skipped.push(`Redis at ${REDIS_URL} (${redisProblem}): no Redis outage test`);
if (ci && skipped.length > 0) {
  console.error(`CI=true requires the real servers, and some are missing:\n- ${skipped.join("\n- ")}`);
  process.exit(1);
}

const dir = import.meta.dirname;
const filter = process.argv.slice(2);
const pick = (suffix: string) =>
  readdirSync(dir)
    .filter((name) => name.endsWith(suffix))
    .map((name) => join(dir, name))
    .filter((f) => filter.length === 0 || filter.some((part) => f.includes(part)))
    .sort();
const fast = pick(".test.ts");
const slow = pick(".reliability.ts");

const env = {
  ...process.env,
  PB_RELIABILITY: process.env.PB_RELIABILITY ?? "1",
  PB_TEST_STORES: pgProblem ? "sqlite" : "sqlite,postgres",
  PB_TEST_REDIS: redisProblem ? "0" : "1",
};

function runFiles(files: string[]): Promise<number> {
  if (files.length === 0) return Promise.resolve(0);
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "--test", "--test-reporter=spec", "--test-concurrency=1", ...files],
      { stdio: "inherit", env },
    );
    child.on("exit", (code) => resolve(code ?? 1));
  });
}

const started = Date.now();
let failed = (await runFiles(fast)) !== 0;
for (const file of slow) failed = (await runFiles([file])) !== 0 || failed;
console.log(`\nReliability files: ${[...fast, ...slow].map((f) => relative(dir, f)).join(", ")}`);
console.log(`Duration: ${Math.round((Date.now() - started) / 1000)} s`);
if (skipped.length > 0) console.log(`\nSKIPPED (servers not reachable):\n- ${skipped.join("\n- ")}`);
else console.log("Stores tested: SQLite and PostgreSQL; Redis available.");
process.exit(failed ? 1 : 0);
