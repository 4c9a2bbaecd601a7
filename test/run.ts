/**
 * The test runner, in two tiers (docs/testing.md):
 *
 * - `npm test` — the fast tier: unit tests, the contract suites on every
 *   store, in-process `inject` tests, and the reliability files at their
 *   small scale. Target: under 4 minutes on a loaded 2-core machine.
 * - `npm run test:slow` — the slow tier, with PB_RELIABILITY=1: whatever
 *   kills, restarts or runs real server processes at length (SIGKILL, outage,
 *   multi-process, the bench smoke), the soak (`*.reliability.ts`), and every
 *   file that scales with PB_RELIABILITY (it imports helpers/reliability.ts)
 *   again at full scale.
 *
 * A file is slow by its name or by a marker, never by its folder (files move):
 * its basename is in SLOW below, or ends with `.slow.test.ts`, or one of its
 * first lines is `// test-tier: slow`.
 *
 * Probes PostgreSQL and Redis first: without a server the embedded suite still
 * runs and the summary says what was skipped; in CI (CI=true) a missing server
 * is a failure. Arguments are substrings that filter the files
 * (`npm test -- webhooks`); `--slow` picks the slow tier, `--all` both;
 * `--list` prints the files each tier would run, and runs nothing.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { PG_ADMIN_URL, REDIS_URL } from "./helpers/env.ts";
import { dropPgTemplate, pgTemplateName, preparePgTemplate } from "./helpers/harness.ts";
import { PGBOUNCER } from "./helpers/pgbouncer.ts";
import { pgAvailable, redisAvailable } from "./helpers/probe.ts";

/** Basenames of the slow files (kill/restart real processes, or run long). */
const SLOW = new Set([
  "crash.test.ts", // SIGKILL of real server processes mid-write and mid-import (http/ and reliability/)
  "outage.test.ts", // PostgreSQL and Redis cut and partitioned for seconds
  "multi-process.test.ts", // two real server processes on one store
  "sqlite-two-processes.test.ts", // a real server and another process writing one SQLite file
  "smoke.test.ts", // the bench, end to end, on both stores
]);

const MARKER = /^\/\/ test-tier: slow\s*$/m;

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === "fixtures" ? [] : filesUnder(path);
    return name.endsWith(".test.ts") || name.endsWith(".reliability.ts") ? [path] : [];
  });
}

function head(path: string): string {
  return readFileSync(path, "utf8").slice(0, 4000);
}

function isSlow(path: string): boolean {
  const name = basename(path);
  if (name.endsWith(".reliability.ts") || name.endsWith(".slow.test.ts") || SLOW.has(name)) return true;
  return MARKER.test(head(path).split("\n").slice(0, 30).join("\n"));
}

/** A file whose scale follows PB_RELIABILITY: small in the fast tier, full again in the slow one. */
function scalesWithReliability(path: string): boolean {
  return /from "(\.\.\/)+helpers\/reliability\.ts"|from "\.\/helpers\/reliability\.ts"/.test(
    readFileSync(path, "utf8"),
  );
}

const args = process.argv.slice(2);
const tier = args.includes("--all") ? "all" : args.includes("--slow") ? "slow" : "fast";
const filter = args.filter((a) => !a.startsWith("--"));

const root = import.meta.dirname;
const all = filesUnder(root)
  .filter((f) => filter.length === 0 || filter.some((part) => f.includes(part)))
  .sort();
const fast = all.filter((f) => !isSlow(f) && !f.endsWith(".reliability.ts"));
const slow = [
  ...all.filter((f) => isSlow(f) && !f.endsWith(".reliability.ts")),
  ...all.filter((f) => !isSlow(f) && scalesWithReliability(f)),
].sort();
const soak = all.filter((f) => f.endsWith(".reliability.ts"));

if (args.includes("--list")) {
  for (const [name, files] of [
    ["fast", fast],
    ["slow (PB_RELIABILITY=1)", slow],
    ["soak", soak],
  ] as const)
    console.log(`${name}:\n${files.map((f) => `  ${relative(root, f)}`).join("\n")}`);
  process.exit(0);
}

/**
 * Files the fast tier runs at once: 3 on 2 cores, since a file spends much
 * of its time waiting for PostgreSQL, SQLite's disk or a child process (2
 * left a third of the CPU idle). PB_TEST_CONCURRENCY overrides it.
 */
const FAST_CONCURRENCY = /^[1-9]\d*$/.test(process.env.PB_TEST_CONCURRENCY ?? "")
  ? Number(process.env.PB_TEST_CONCURRENCY)
  : 3;

/**
 * How long each file took last time (ms, by path relative to test/), written
 * after every run. The fast tier starts the longest files first, so that the
 * run does not end with one long file alone on an idle machine; files not
 * measured yet go first. Git-ignored; without it the order is alphabetical.
 */
const DURATIONS = join(root, "..", ".tmp", "test-durations.json");

function readDurations(): Record<string, number> {
  try {
    return JSON.parse(readFileSync(DURATIONS, "utf8")) as Record<string, number>;
  } catch {
    return {};
  }
}

function longestFirst(files: string[]): string[] {
  const known = readDurations();
  const ms = (f: string) => known[relative(root, f)] ?? Number.POSITIVE_INFINITY;
  return [...files].sort((a, b) => ms(b) - ms(a) || a.localeCompare(b));
}

/** Adds up the reporter's lines (helpers/durations-reporter.mjs) per file and keeps them. */
function saveDurations(lines: string): void {
  const measured: Record<string, number> = {};
  for (const line of lines.split("\n")) {
    if (!line) continue;
    const { file, ms } = JSON.parse(line) as { file: string; ms: number };
    const name = relative(root, file);
    measured[name] = (measured[name] ?? 0) + ms;
  }
  if (Object.keys(measured).length === 0) return;
  mkdirSync(dirname(DURATIONS), { recursive: true });
  const rounded = Object.fromEntries(Object.entries(measured).map(([f, ms]) => [f, Math.round(ms)]));
  writeFileSync(DURATIONS, `${JSON.stringify({ ...readDurations(), ...rounded }, null, 2)}\n`);
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

// One migrated PostgreSQL database for the whole run, copied by every test
// store that starts migrated (helpers/harness.ts, PB_TEST_PG_TEMPLATE).
const template = pgProblem ? undefined : pgTemplateName();
// dist/ is built here, once, if a source is newer: the tests that start
// `bin/phonebook.js` would otherwise each compile it, two files at once
// writing the same dist/ (~15 s of tsc each, inside those tests' time).
await Promise.all([template ? preparePgTemplate(template) : undefined, buildDist()]);
const dropTemplate = async () => {
  if (template) await dropPgTemplate(template).catch(() => {});
};

const baseEnv = {
  ...process.env,
  PB_TEST_STORES: pgProblem ? "sqlite" : "sqlite,postgres",
  PB_TEST_REDIS: redisProblem ? "0" : "1",
  ...(template ? { PB_TEST_PG_TEMPLATE: template } : {}),
};

/** `node bin/build.js`: compiles dist/ when it is stale, does nothing otherwise. */
function buildDist(): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, "..", "bin", "build.js")], { stdio: "inherit" });
    child.on("exit", (code) => {
      if (code !== 0)
        console.error(
          "test/run.ts: dist/ could not be built; the tests that start bin/phonebook.js will say why",
        );
      resolve();
    });
  });
}

/**
 * One `node --test` over `files`. The per-test timeout is a hang detector,
 * not a performance bound (generous: 20 min); when it fires, the file's after
 * hooks and exit handlers kill the processes it started (helpers/children.ts).
 */
function run(files: string[], concurrency: number, env: NodeJS.ProcessEnv): Promise<number> {
  if (files.length === 0) return Promise.resolve(0);
  const durations = join(root, "..", ".tmp", `durations-${process.pid}-${Date.now()}.jsonl`);
  mkdirSync(dirname(durations), { recursive: true });
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "--test",
        "--test-reporter=spec",
        "--test-reporter-destination=stdout",
        `--test-reporter=${join(root, "helpers", "durations-reporter.mjs")}`,
        "--test-reporter-destination=/dev/null",
        `--test-concurrency=${concurrency}`,
        "--test-timeout=1200000",
        "--test-force-exit",
        ...(concurrency > 1 ? longestFirst(files) : files),
      ],
      { stdio: "inherit", env: { ...env, PB_TEST_DURATIONS: durations } },
    );
    // Ctrl-C / SIGTERM to the runner reaches node --test, which stops its files.
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => child.kill(signal));
    child.on("exit", (code) => {
      try {
        saveDurations(readFileSync(durations, "utf8"));
      } catch {
        // no durations (the run was stopped early): the order stays as it was
      }
      rmSync(durations, { force: true });
      resolve(code ?? 1);
    });
  });
}

const started = Date.now();
let failed = false;
const ran: string[] = [];
if (tier === "fast" || tier === "all") {
  failed = (await run(fast, FAST_CONCURRENCY, baseEnv)) !== 0 || failed;
  ran.push(...fast);
}
if (tier === "slow" || tier === "all") {
  const env = { ...baseEnv, PB_RELIABILITY: process.env.PB_RELIABILITY ?? "1" };
  failed = (await run(slow, 1, env)) !== 0 || failed;
  // The soak has the machine to itself, one file at a time.
  for (const file of soak) failed = (await run([file], 1, env)) !== 0 || failed;
  ran.push(...slow, ...soak);
}
await dropTemplate();
console.log(`\nTier: ${tier}. Test files: ${ran.map((f) => relative(root, f)).join(", ")}`);
console.log(`Duration: ${Math.round((Date.now() - started) / 1000)} s`);
if (skipped.length > 0) console.log(`\nSKIPPED (servers not reachable):\n- ${skipped.join("\n- ")}`);
else console.log("\nStores tested: SQLite and PostgreSQL; Redis available.");
process.exit(failed ? 1 : 0);
