/**
 * CI smoke test of `npm run bench`: the harness runs end to end on a small
 * store, every scenario answers with 0 errors, and it writes its results and
 * removes its store. No timing is asserted: figures on a shared CI machine
 * mean nothing; the benchmark itself is run by hand (bench/README.md).
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import pg from "pg";
import { PENDING, SCENARIOS } from "../../bench/lib/scenarios.ts";
import { spawnNode } from "../helpers/children.ts";
import { PG_ADMIN_URL, storeKinds } from "../helpers/env.ts";

const ROOT = join(import.meta.dirname, "..", "..");

function runBench(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawnNode(["--import", "tsx", "bench/run.ts", ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout!.on("data", (d) => {
      output += d;
    });
    child.stderr!.on("data", (d) => {
      output += d;
    });
    child.on("exit", (code) => resolve({ code: code ?? 1, output }));
  });
}

interface Results {
  store: string;
  storeLocation: string;
  seed: { inserted: number; skipped: number; rowsPerSecond: number; peakRssBytes: number };
  scenarios: Array<
    | {
        id: string;
        kind: "http";
        phonebook: { requests: number; errors: number };
        ceiling: { requests: number; errors: number };
        floor: { requests: number; errors: number };
      }
    | {
        id: string;
        kind: "bulk";
        rows: number;
        errors: number;
        startRssBytes: number;
        peakRssBytes: number;
        floorRowsPerSecond?: number;
      }
  >;
  targets: Array<{ target: string; verdict: string }>;
  pending: Array<{ title: string }>;
  failures: string[];
}

function assertClean(results: Results, ids: string[], output: string) {
  assert.deepEqual(results.failures, [], output);
  assert.deepEqual(
    results.scenarios.map((s) => s.id),
    ids,
    output,
  );
  for (const s of results.scenarios) {
    if (s.kind === "bulk") {
      assert.equal(s.errors, 0, `${s.id} had errors\n${output}`);
      assert.ok(s.rows > 0 && s.peakRssBytes > 0 && s.startRssBytes > 0, `${s.id} moved no rows`);
      if (s.id === "import") assert.ok((s.floorRowsPerSecond ?? 0) > 0, `the import has no floor\n${output}`);
      continue;
    }
    for (const side of ["phonebook", "ceiling", "floor"] as const) {
      assert.equal(s[side].errors, 0, `${s.id} ${side} had errors\n${output}`);
      assert.ok(s[side].requests > 0, `${s.id} ${side} made no requests`);
    }
  }
  assert.equal(results.targets.find((t) => t.target === "0 errors anywhere")?.verdict, "pass");
  assert.equal(results.pending.length, PENDING.length);
}

describe("npm run bench (smoke)", () => {
  const out = mkdtempSync(join(tmpdir(), "pb-bench-smoke-"));
  after(() => rmSync(out, { recursive: true, force: true }));

  test("SQLite: seeds 10,000 contacts, runs every scenario with 0 errors, writes results, removes its store", async () => {
    const { code, output } = await runBench([
      "--contacts",
      "10000",
      "--duration",
      "1",
      "--warmup",
      "0",
      "--out",
      out,
    ]);
    assert.equal(code, 0, output);
    const markdown = readFileSync(join(out, "sqlite-10000.md"), "utf8");
    assert.match(markdown, /\| get by id \|/);
    const results = JSON.parse(readFileSync(join(out, "sqlite-10000.json"), "utf8")) as Results;
    assertClean(
      results,
      SCENARIOS.map((s) => s.id),
      output,
    );
    assert.equal(results.seed.inserted, 10000);
    assert.equal(results.seed.skipped, 0);
    assert.ok(results.seed.peakRssBytes > 0);
    assert.equal(existsSync(results.storeLocation), false, "the SQLite directory is removed");
  });

  // Like the contract suites, the PostgreSQL case exists when this run has PostgreSQL (test/run.ts probes it).
  if (!storeKinds().includes("postgres")) return;
  test("PostgreSQL: runs in a database of its own and drops it", async () => {
    const { code, output } = await runBench(
      [
        "--store",
        "pg",
        "--contacts",
        "3000",
        "--duration",
        "1",
        "--warmup",
        "0",
        "--only",
        "get,create",
        "--out",
        out,
      ],
      { PB_BENCH_PG_URL: PG_ADMIN_URL },
    );
    assert.equal(code, 0, output);
    const results = JSON.parse(readFileSync(join(out, "postgres-3000.json"), "utf8")) as Results;
    assertClean(results, ["get", "create"], output);
    assert.match(results.storeLocation, /^pb_bench_[0-9a-f]+$/);
    const client = new pg.Client({ connectionString: PG_ADMIN_URL });
    await client.connect();
    const left = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [results.storeLocation]);
    await client.end();
    assert.equal(left.rowCount, 0, "the benchmark database is dropped");
  });
});
