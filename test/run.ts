/**
 * `npm test`: probes PostgreSQL and Redis, then runs every test file with
 * node's test runner. Without a server the embedded suite still runs and the
 * summary says what was skipped; in CI (CI=true) a missing server is a failure.
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { PG_ADMIN_URL, REDIS_URL } from "./helpers/env.ts";
import { PGBOUNCER } from "./helpers/pgbouncer.ts";
import { pgAvailable, redisAvailable } from "./helpers/probe.ts";

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return testFiles(path);
    return name.endsWith(".test.ts") ? [path] : [];
  });
}

const ci = process.env.CI === "true";
const [pgProblem, redisProblem] = await Promise.all([pgAvailable(), redisAvailable()]);
const skipped: string[] = [];
if (pgProblem)
  skipped.push(`PostgreSQL at ${PG_ADMIN_URL} (${pgProblem}): every contract suite ran on SQLite only`);
if (redisProblem)
  skipped.push(`Redis at ${REDIS_URL} (${redisProblem}): the shared-bucket tests did not run`);
if (!pgProblem && !existsSync(PGBOUNCER))
  skipped.push(
    `PgBouncer at ${PGBOUNCER} (apt-get install pgbouncer): the transaction-pooling tests did not run`,
  );
if (ci && skipped.length > 0) {
  console.error(`CI=true requires the real servers, and some are missing:\n- ${skipped.join("\n- ")}`);
  process.exit(1);
}

const filter = process.argv.slice(2);
const root = join(import.meta.dirname);
const files = testFiles(root)
  .filter((f) => filter.length === 0 || filter.some((part) => f.includes(part)))
  .sort();
const child = spawn(
  process.execPath,
  [
    "--import",
    "tsx",
    "--test",
    "--test-reporter=spec",
    "--test-concurrency=2",
    "--test-force-exit",
    ...files,
  ],
  {
    stdio: "inherit",
    env: {
      ...process.env,
      PB_TEST_STORES: pgProblem ? "sqlite" : "sqlite,postgres",
      PB_TEST_REDIS: redisProblem ? "0" : "1",
    },
  },
);
child.on("exit", (code) => {
  console.log(`\nTest files: ${files.map((f) => relative(root, f)).join(", ")}`);
  if (skipped.length > 0) console.log(`\nSKIPPED (servers not reachable):\n- ${skipped.join("\n- ")}`);
  else console.log("\nStores tested: SQLite and PostgreSQL; Redis available.");
  process.exit(code ?? 1);
});
