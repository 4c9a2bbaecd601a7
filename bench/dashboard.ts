/**
 * Dashboard benchmark, in Debian's Chromium (headless, playwright-core),
 * against a real server process on a SQLite store of the benchmark's
 * population (bench/lib/seed.ts: realistic names, phones, emails, labels;
 * the big tenant holds 95 % of the rows):
 *   - navigation → first contacts row painted (signed in: key already in sessionStorage);
 *   - per search term, last keystroke → its results painted (the dashboard's
 *     debounce included), and the server's time for the same request alone;
 *   - the bundle size.
 *
 *   npm run bench:dashboard                                  # 1,000,000 contacts, a fresh store, removed afterwards
 *   npm run bench:dashboard -- --contacts 20000              # a quick look
 *   npm run bench:dashboard -- --keep                        # keep the seeded store (prints where it is)
 *   npm run bench:dashboard -- --store-dir /tmp/pb-dash-XXX  # reuse a kept store (of this script or `npm run bench -- --keep`)
 */

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import { createApiKey } from "../src/domain/organizations.ts";
import { createSqliteStore } from "../src/store/store.ts";
import { launchBrowser } from "../test/helpers/browser.ts";
import { startServerProcess } from "../test/helpers/server-process.ts";
import { buildDashboard, DIST } from "../web/build.ts";
import { SEARCH_DEBOUNCE_MS } from "../web/src/filters.ts";
import { COMMON_TERM, PHONE_DIGITS, RARE_TERM, TENANTS } from "./lib/dataset.ts";
import { countContacts, seed } from "./lib/seed.ts";

const { values } = parseArgs({
  options: {
    contacts: { type: "string", default: "1000000" },
    runs: { type: "string", default: "7" },
    keep: { type: "boolean", default: false },
    "store-dir": { type: "string" },
  },
});
const N = Number(values.contacts);
const RUNS = Number(values.runs);

/**
 * What a user types: a very common first name (8 % of contacts), a surname
 * 10 contacts carry, the start of an Indonesian mobile, and an email
 * fragment (first name, dot, the start of a surname).
 */
const TERMS: Array<{ what: string; term: string }> = [
  { what: "common first name", term: "Muhammad" },
  { what: "rare surname", term: "Quatermaine" },
  { what: "phone digits", term: PHONE_DIGITS },
  { what: "email fragment", term: "dewi.setia" },
];
if (COMMON_TERM !== "muhammad" || RARE_TERM !== "quatermaine") throw new Error("dataset terms changed");
/** Milliseconds between two keys: a fast typist (the debounce fires once, after the last key). */
const TYPING_DELAY_MS = 60;

function median(list: number[]): number {
  const sorted = [...list].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
const fmt = (v: number) => `${v.toFixed(0)} ms`;
const log = (line: string) => console.log(line);

await buildDashboard();
const js = readFileSync(join(DIST, "app.js"));
const css = readFileSync(join(DIST, "app.css"));
log(
  `bundle: app.js ${js.length} B (${gzipSync(js).length} B gzip), app.css ${css.length} B (${gzipSync(css).length} B gzip)`,
);
log(
  `load average at start: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);

// The store: a kept one, or a fresh one seeded with the benchmark's population.
const reuse = values["store-dir"];
const dir = reuse ?? mkdtempSync(join(tmpdir(), "pb-dash-"));
const store = createSqliteStore(join(dir, "phonebook.db"));
let key: string;
let contacts: number;
try {
  await store.migrate();
  const big = TENANTS[0]!.name;
  if (reuse) {
    const org = await store.db
      .selectFrom("organizations")
      .select("id")
      .where("name", "=", big)
      .executeTakeFirstOrThrow();
    key = (await createApiKey(store.db, org.id, { label: "dashboard bench" })).key;
    contacts = await countContacts(store, org.id);
    log(`reusing ${dir}: ${contacts.toLocaleString("en-US")} contacts in the big tenant`);
  } else {
    const t0 = Date.now();
    const result = await seed(store, N, { batch: 5000, log });
    key = result.tenants[0]!.key;
    contacts = await countContacts(store, result.tenants[0]!.orgId);
    log(
      `seeded ${N.toLocaleString("en-US")} contacts in ${((Date.now() - t0) / 1000).toFixed(0)} s (big tenant: ${contacts.toLocaleString("en-US")})`,
    );
  }
} finally {
  await store.close();
}

const server = await startServerProcess({ DATA_DIR: dir }, { startTimeoutMs: 300_000 });
const b = await launchBrowser({ width: 1280, height: 800 });
try {
  const { page } = b;
  await page.context().addInitScript((k) => sessionStorage.setItem("phonebook.api_key", k), key);
  // Warm-up: the browser compiles the bundle, the server and SQLite warm their caches.
  await page.goto(`${server.url}/#/contacts`);
  await page.locator("table.contacts td.name").first().waitFor({ timeout: 120_000 });

  const firstRow: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    await page.goto("about:blank");
    await page.goto(`${server.url}/#/contacts`, { waitUntil: "commit" });
    const handle = await page.waitForFunction(
      () => (document.querySelector("table.contacts td.name") ? performance.now() : false),
      undefined,
      { polling: "raf", timeout: 120_000 },
    );
    firstRow.push((await handle.jsonValue()) as number);
  }

  /** The server alone: the dashboard's request for a term (first page of 50), from Node. */
  const serverTime = async (term: string): Promise<{ ms: number; rows: number }> => {
    const t0 = performance.now();
    const res = await fetch(`${server.url}/v1/contacts?search=${encodeURIComponent(term)}&limit=50`, {
      headers: { authorization: `Bearer ${key}` },
    });
    const body = (await res.json()) as { data: unknown[] };
    if (!res.ok) throw new Error(`search ${term}: ${res.status} ${JSON.stringify(body)}`);
    return { ms: performance.now() - t0, rows: body.data.length };
  };

  const searches: Array<{ what: string; term: string; browser: number[]; server: number[]; rows: number }> =
    [];
  for (const { what, term } of TERMS) {
    const browser: number[] = [];
    const alone: number[] = [];
    let rows = 0;
    for (let i = 0; i < RUNS; i++) {
      await page.goto(`${server.url}/#/contacts`);
      await page.locator("table.contacts td.name").first().waitFor({ timeout: 120_000 });
      const box = page.getByLabel("Search");
      await box.focus();
      await page.evaluate(() => {
        const w = window as unknown as { lastKey: number };
        document.addEventListener("keydown", () => {
          w.lastKey = performance.now();
        });
      });
      await page.keyboard.type(term, { delay: TYPING_DELAY_MS });
      // Shown: the table holds the rows of this search (data-search) and is not loading.
      const handle = await page.waitForFunction(
        (expected) => {
          const table = document.querySelector("table.contacts");
          if (table?.getAttribute("data-search") !== expected || table.getAttribute("aria-busy") !== "false")
            return false;
          return performance.now() - (window as unknown as { lastKey: number }).lastKey;
        },
        term,
        { polling: "raf", timeout: 120_000 },
      );
      browser.push((await handle.jsonValue()) as number);
      const s = await serverTime(term);
      alone.push(s.ms);
      rows = s.rows;
    }
    searches.push({ what, term, browser, server: alone, rows });
  }

  log(`\ncontacts: ${contacts.toLocaleString("en-US")} in the tenant (SQLite), ${RUNS} runs each, medians:`);
  log(`navigation → first row painted: ${fmt(median(firstRow))} (runs: ${firstRow.map(fmt).join(", ")})`);
  log(
    `last keystroke → results painted (typing ${TYPING_DELAY_MS} ms a key; ${SEARCH_DEBOUNCE_MS} ms debounce included):`,
  );
  for (const s of searches) {
    log(
      `  ${s.what} "${s.term}" (${s.rows}${s.rows === 50 ? "+" : ""} rows): ${fmt(median(s.browser))}; the request alone ${fmt(median(s.server))} (runs: ${s.browser.map(fmt).join(", ")})`,
    );
  }
  log(
    `load average at end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
} finally {
  await b.close();
  await server.kill("SIGTERM");
  if (values.keep || reuse) log(`store kept: ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
