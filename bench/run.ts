/**
 * `npm run bench`: seeds a store, starts the Phonebook server and a ceiling
 * (bare Fastify), drives both with autocannon, times the floor (the same store
 * work in-process), and writes a Markdown table and a JSON file under
 * bench/results/. See bench/README.md.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import pg from "pg";
import { CursorCodec } from "../src/domain/pagination.ts";
import { createPostgresStore, createSqliteStore, type Store } from "../src/store/store.ts";
import { driveFloor, driveHttp, type LoadOptions, type LoadResult } from "./lib/drive.ts";
import {
  type BulkScenarioResult,
  checkTargets,
  type RunResult,
  type ScenarioResult,
  toMarkdown,
} from "./lib/report.ts";
import {
  type BenchContext,
  freshPhones,
  type HttpScenario,
  PENDING,
  SCENARIOS,
  type Scenario,
} from "./lib/scenarios.ts";
import { countContacts, positionAt, sampleContacts, seed } from "./lib/seed.ts";
import {
  type RestartableTarget,
  rssOf,
  rssSampler,
  type ServerMode,
  startCeiling,
  startPhonebook,
  type Target,
} from "./lib/servers.ts";

const USAGE = `Usage: npm run bench -- [options]

  --contacts N        contacts to seed (default 1000000)
  --store S           sqlite (default) or pg
  --connections N     autocannon connections (default 10)
  --duration S        seconds measured per target and scenario (default 10)
  --warmup S          seconds of load before each measurement (default 2)
  --repeat N          measurements per request scenario and target, the median reported (default 3)
  --server MODE       child (default): each server in its own process; inprocess: in the harness
  --only IDS          comma-separated scenario ids (${SCENARIOS.map((s) => s.id).join(", ")})
  --batch N           contacts per seeding transaction (default 5000)
  --out DIR           where results go (default bench/results)
  --log-level L       the server's LOG_LEVEL (default warn)
  --keep              keep the seeded store (prints where it is)
  --cpu-prof DIR      write a V8 CPU profile of the Phonebook server (child mode) into DIR

PostgreSQL: PB_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres) is
used to create and drop a database pb_bench_<random> for the run.`;

interface Options {
  contacts: number;
  store: "sqlite" | "postgres";
  connections: number;
  duration: number;
  repeat: number;
  warmup: number;
  server: ServerMode;
  only: string[] | undefined;
  batch: number;
  out: string;
  logLevel: string;
  keep: boolean;
  cpuProf: string | undefined;
  argv: string;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      contacts: { type: "string" },
      store: { type: "string" },
      connections: { type: "string" },
      duration: { type: "string" },
      warmup: { type: "string" },
      repeat: { type: "string" },
      server: { type: "string" },
      only: { type: "string" },
      batch: { type: "string" },
      out: { type: "string" },
      "log-level": { type: "string" },
      keep: { type: "boolean" },
      "cpu-prof": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const number = (name: string, raw: string | undefined, fallback: number, min: number): number => {
    if (raw === undefined) return fallback;
    const value = Number(raw.replaceAll("_", ""));
    if (!Number.isFinite(value) || value < min) throw new Error(`--${name} must be a number ≥ ${min}`);
    return value;
  };
  const store = values.store ?? "sqlite";
  if (!["sqlite", "pg", "postgres"].includes(store)) throw new Error("--store must be sqlite or pg");
  const server = values.server ?? "child";
  if (server !== "child" && server !== "inprocess") throw new Error("--server must be child or inprocess");
  const only = values.only?.split(",").map((s) => s.trim());
  for (const id of only ?? []) {
    if (!SCENARIOS.some((s) => s.id === id)) throw new Error(`unknown scenario ${id}`);
  }
  return {
    contacts: Math.floor(number("contacts", values.contacts, 1_000_000, 100)),
    store: store === "sqlite" ? "sqlite" : "postgres",
    connections: Math.floor(number("connections", values.connections, 10, 1)),
    duration: number("duration", values.duration, 10, 0.5),
    warmup: number("warmup", values.warmup, 2, 0),
    repeat: Math.floor(number("repeat", values.repeat, 3, 1)),
    server,
    only,
    batch: Math.floor(number("batch", values.batch, 5000, 1)),
    // bench/results of the repository, whether this runs from bench/ (tsx) or dist/bench/ (compiled).
    out: resolve(
      values.out ??
        join(import.meta.dirname, import.meta.url.endsWith(".js") ? "../../bench" : ".", "results"),
    ),
    logLevel: values["log-level"] ?? "warn",
    keep: values.keep ?? false,
    cpuProf: values["cpu-prof"] === undefined ? undefined : resolve(values["cpu-prof"]),
    argv: argv.join(" "),
  };
}

const log = (line: string) => process.stderr.write(`${line}\n`);

/** A fresh store for the run, and how to remove it. */
async function freshStore(
  kind: Options["store"],
): Promise<{ store: Store; env: Record<string, string>; where: string; drop(): Promise<void> }> {
  // `where`: the SQLite directory or the PostgreSQL database name (never a URL: it may hold a password).
  if (kind === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "pb-bench-"));
    const store = createSqliteStore(join(dir, "phonebook.db"));
    return {
      store,
      env: { DATA_DIR: dir },
      where: dir,
      async drop() {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const adminUrl = process.env.PB_BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
  const name = `pb_bench_${randomBytes(5).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const store = createPostgresStore(url.toString());
  return {
    store,
    env: { DATABASE_URL: url.toString() },
    where: name,
    async drop() {
      await store.close();
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

/** One real request: the status and body the scenario expects, checked before any load. */
async function sampleResponse(
  url: string,
  plan: Awaited<ReturnType<HttpScenario["prepare"]>>,
): Promise<{ status: number; body: string }> {
  const request = plan.next();
  const response = await fetch(new URL(request.path, url), {
    method: request.method,
    headers: {
      ...request.headers,
      ...(request.body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: request.body,
  });
  const body = await response.text();
  if (response.status !== plan.expectStatus) {
    throw new Error(`${request.method} ${request.path} answered ${response.status}: ${body.slice(0, 300)}`);
  }
  const problem = plan.check(JSON.parse(body), request);
  if (problem) throw new Error(`${request.method} ${request.path}: ${problem}`);
  return { status: response.status, body };
}

/** The run with the median req/s (the lower middle one for an even count), with every run's errors. */
function medianRun(runs: LoadResult[]): LoadResult {
  const sorted = [...runs].sort((a, b) => a.rps - b.rps);
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return { ...median, errors: runs.reduce((sum, r) => sum + r.errors, 0) };
}

async function runScenario(
  scenario: Scenario,
  ctx: BenchContext,
  targets: { phonebook: RestartableTarget; ceiling: Awaited<ReturnType<typeof startCeiling>> },
  options: Options,
): Promise<ScenarioResult> {
  if (scenario.kind === "bulk") {
    // Each bulk operation gets a freshly started server, so that its memory
    // figures are its own and not what an earlier scenario left behind.
    await targets.phonebook.restart();
    const startRssBytes = rssOf(targets.phonebook.pid);
    const rss = rssSampler(targets.phonebook.pid);
    const start = performance.now();
    let rows = 0;
    let errors = 0;
    let extra: { figures?: Record<string, number>; details?: string[] } = {};
    try {
      const outcome = await scenario.run(ctx, targets.phonebook.url, { pid: targets.phonebook.pid });
      rows = outcome.rows;
      extra = { figures: outcome.figures, details: outcome.details };
    } catch (error) {
      errors = 1;
      log(`  ${scenario.id} failed: ${(error as Error).message}`);
    }
    const seconds = (performance.now() - start) / 1000;
    const peakRssBytes = rss.stop();
    let floorRowsPerSecond: number | undefined;
    if (scenario.floor && rows > 0) {
      log(`  ${scenario.id}: floor`);
      const floor = await scenario.floor(ctx, rows);
      floorRowsPerSecond = floor.rows / floor.seconds;
    }
    const result: BulkScenarioResult = {
      kind: "bulk",
      id: scenario.id,
      title: scenario.title,
      rows,
      seconds,
      rowsPerSecond: rows / seconds,
      startRssBytes,
      peakRssBytes,
      ...(floorRowsPerSecond === undefined ? {} : { floorRowsPerSecond }),
      errors,
      ...(extra.figures && { figures: extra.figures }),
      ...(extra.details && { details: extra.details }),
    };
    return result;
  }
  const plan = await scenario.prepare(ctx);
  const sample = await sampleResponse(targets.phonebook.url, plan);
  await targets.ceiling.setResponse(sample);
  const load: LoadOptions = {
    connections: options.connections,
    duration: options.duration,
    warmup: options.warmup,
  };
  // Each target is measured `repeat` times, interleaved (phonebook, ceiling, floor, phonebook, …)
  // so that a burst of load from the machine's neighbours hits all three alike; the run with the
  // median req/s is reported for each, with the errors of every run counted.
  const runs: Array<{ phonebook: LoadResult; ceiling: LoadResult; floor: LoadResult }> = [];
  for (let i = 0; i < options.repeat; i++) {
    const round = options.repeat > 1 ? ` (${i + 1}/${options.repeat})` : "";
    log(`  ${scenario.id}: phonebook${round}`);
    const phonebookRun = await driveHttp(targets.phonebook.url, plan.next, load, targets.phonebook.pid);
    log(`  ${scenario.id}: ceiling${round}`);
    const ceilingRun = await driveHttp(targets.ceiling.url, plan.next, load, targets.ceiling.pid);
    log(`  ${scenario.id}: floor${round}`);
    const floorRun = await driveFloor(plan.floor, {
      concurrency: ctx.store.dialect === "sqlite" ? 1 : options.connections,
      duration: options.duration,
      warmup: options.warmup,
    });
    if (floorRun.firstError) log(`  ${scenario.id}: floor error: ${floorRun.firstError}`);
    runs.push({ phonebook: phonebookRun, ceiling: ceilingRun, floor: floorRun });
  }
  const phonebook = medianRun(runs.map((r) => r.phonebook));
  const ceiling = medianRun(runs.map((r) => r.ceiling));
  const floor = medianRun(runs.map((r) => r.floor));
  return {
    kind: "http",
    id: scenario.id,
    title: scenario.title,
    phonebook,
    ceiling,
    floor,
    ratioToCeiling: phonebook.rps / ceiling.rps,
    cpuRatioToCeiling: ceiling.cpuMicrosPerRequest / phonebook.cpuMicrosPerRequest,
    responseBytes: Buffer.byteLength(sample.body),
  };
}

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const startedAt = new Date().toISOString();
  const loadAtStart = loadavg();
  log(`Phonebook benchmark: ${options.store}, ${options.contacts.toLocaleString("en-US")} contacts`);

  const fresh = await freshStore(options.store);
  const running: Target[] = [];
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    for (const target of running) await target.stop().catch(() => {});
    if (options.keep) log(`Kept the store: ${fresh.where}`);
    else await fresh.drop().catch((error) => log(`could not drop the store: ${(error as Error).message}`));
  };
  const onSignal = () => {
    cleanup().then(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  try {
    const { store } = fresh;
    await store.migrate();
    log(`Seeding ${options.contacts.toLocaleString("en-US")} contacts…`);
    const seeded = await seed(store, options.contacts, { batch: options.batch, log });
    const tenant = seeded.tenants[0]!;
    const tenantContacts = await countContacts(store, tenant.orgId);
    const deepDepth = Math.min(Math.floor(options.contacts * 0.9), tenantContacts - 100);
    const deepPosition = await positionAt(store, tenant.orgId, deepDepth);
    const sample = await sampleContacts(store, tenant.orgId, 2000);
    log(
      `Seeded in ${seeded.seconds.toFixed(1)} s (${Math.round(seeded.inserted / seeded.seconds)} rows/s wall, ` +
        `${Math.round(seeded.inserted / seeded.productSeconds)} rows/s in bulkInsertContacts)`,
    );

    const cursorSecret = randomBytes(24).toString("base64url");
    const metaAppSecret = randomBytes(24).toString("base64url");
    const serverEnv = {
      ...fresh.env,
      PHONEBOOK_CURSOR_SECRET: cursorSecret,
      META_APP_SECRET: metaAppSecret,
      META_VERIFY_TOKEN: "bench-verify-token",
      // The webhook scenario's receiver listens on 127.0.0.1.
      WEBHOOKS_ALLOW_HTTP: "true",
      WEBHOOKS_ALLOW_PRIVATE: "true",
      LOG_LEVEL: options.logLevel,
    };
    const [phonebook, ceiling] = await Promise.all([
      startPhonebook(options.server, serverEnv, store, options.cpuProf),
      startCeiling(options.server),
    ]);
    running.push(phonebook, ceiling);
    log(`Phonebook at ${phonebook.url}, ceiling at ${ceiling.url} (${options.server})`);

    const ctx: BenchContext = {
      importRows: Math.min(options.contacts, 1_000_000),
      loadOptions: { connections: options.connections, duration: options.duration, warmup: options.warmup },
      metaAppSecret,
      store,
      cursors: new CursorCodec(cursorSecret),
      tenant,
      tenantContacts,
      deepPosition,
      deepDepth,
      sample,
      freshPhone: freshPhones(),
    };
    const results: ScenarioResult[] = [];
    const failures: string[] = [];
    for (const scenario of SCENARIOS) {
      if (options.only && !options.only.includes(scenario.id)) continue;
      log(`Scenario ${scenario.id} (${scenario.title})`);
      try {
        results.push(await runScenario(scenario, ctx, { phonebook, ceiling }, options));
      } catch (error) {
        failures.push(`${scenario.id}: ${(error as Error).message}`);
        log(`  FAILED: ${(error as Error).message}`);
      }
    }

    const run: RunResult = {
      title: `Phonebook benchmark: ${options.store === "sqlite" ? "SQLite" : "PostgreSQL"}, ${options.contacts.toLocaleString("en-US")} contacts`,
      startedAt,
      finishedAt: new Date().toISOString(),
      machine: {
        node: process.version,
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model.trim() ?? "unknown",
        totalMemGiB: Math.round(totalmem() / 2 ** 30),
        loadAverageAtStart: loadAtStart,
        loadAverageAtEnd: loadavg(),
      },
      options: { ...options },
      store: options.store,
      storeLocation: fresh.where,
      storeKept: options.keep,
      seed: {
        contacts: seeded.contacts,
        inserted: seeded.inserted,
        skipped: seeded.skipped,
        seconds: seeded.seconds,
        rowsPerSecond: seeded.inserted / seeded.seconds,
        productSeconds: seeded.productSeconds,
        productRowsPerSecond: seeded.inserted / seeded.productSeconds,
        peakRssBytes: seeded.peakRssBytes,
        tenantContacts,
        deepDepth,
      },
      scenarios: results,
      pending: PENDING,
      targets: checkTargets(options.store, results),
    };
    let markdown = toMarkdown(run);
    if (failures.length > 0) {
      markdown += `\n## Scenarios that failed their check\n\n${failures.map((f) => `- ${f}`).join("\n")}\n`;
    }
    mkdirSync(options.out, { recursive: true });
    const base = join(options.out, `${options.store}-${options.contacts}`);
    writeFileSync(`${base}.md`, markdown);
    writeFileSync(`${base}.json`, `${JSON.stringify({ ...run, failures }, null, 2)}\n`);
    console.log(markdown);
    log(`Results: ${base}.md, ${base}.json`);
    const errors = run.targets.find((t) => t.target === "0 errors anywhere")?.verdict === "FAIL";
    return failures.length > 0 || errors ? 1 : 0;
  } finally {
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
