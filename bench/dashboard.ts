/**
 * Dashboard benchmark, in Debian's Chromium (headless, playwright-core):
 *   - navigation → first contacts row painted (signed in, key already in sessionStorage);
 *   - keystroke → search results shown (last key typed → the matching row painted;
 *     includes the dashboard's 250 ms debounce, which is reported apart).
 * Runs against a real server process on a fresh SQLite store seeded with
 * BENCH_DASHBOARD_CONTACTS contacts (default 20,000; the machine is shared).
 *
 *   npm run bench:dashboard            # or: BENCH_DASHBOARD_CONTACTS=50000 npm run bench:dashboard
 */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { launchBrowser } from "../test/helpers/browser.ts";
import { startDashboardFixture } from "../test/web/dashboard-fixture.ts";
import { buildDashboard, DIST } from "../web/build.ts";

const N = Number(process.env.BENCH_DASHBOARD_CONTACTS ?? 20_000);
const RUNS = Number(process.env.BENCH_DASHBOARD_RUNS ?? 7);
const DEBOUNCE_MS = 250;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

await buildDashboard();
const js = readFileSync(join(DIST, "app.js"));
const css = readFileSync(join(DIST, "app.css"));
console.log(
  `bundle: app.js ${js.length} B (${gzipSync(js).length} B gzip), app.css ${css.length} B (${gzipSync(css).length} B gzip)`,
);

const seedStart = Date.now();
const f = await startDashboardFixture("sqlite", { people: N });
console.log(`seeded ${N.toLocaleString()} contacts in ${((Date.now() - seedStart) / 1000).toFixed(1)} s`);
const b = await launchBrowser({ width: 1280, height: 800 });
try {
  const { page } = b;
  await page.context().addInitScript((key) => sessionStorage.setItem("phonebook.api_key", key), f.key);
  // Warm-up (first launch compiles the bundle, the server warms its caches).
  await page.goto(`${f.url}/#/contacts`);
  await page.locator("td.name").first().waitFor();

  const firstRow: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    await page.goto("about:blank");
    await page.goto(`${f.url}/#/contacts`, { waitUntil: "commit" });
    const handle = await page.waitForFunction(
      () => (document.querySelector("table.contacts td.name") ? performance.now() : false),
      undefined,
      { polling: "raf", timeout: 60_000 },
    );
    firstRow.push((await handle.jsonValue()) as number);
  }

  const search: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const target = `Person ${String(Math.floor(((i + 1) * N) / (RUNS + 2))).padStart(3, "0")}`;
    await page.goto(`${f.url}/#/contacts`);
    await page.locator("td.name").first().waitFor();
    const box = page.getByLabel("Search");
    await box.focus();
    await page.evaluate(() => {
      const w = window as unknown as { lastKey: number };
      document.addEventListener("keydown", () => {
        w.lastKey = performance.now();
      });
    });
    await page.keyboard.type(target, { delay: 20 });
    const handle = await page.waitForFunction(
      (expected) => {
        const cells = document.querySelectorAll("table.contacts td.name");
        const busy = document.querySelector("table.contacts")?.getAttribute("aria-busy") === "true";
        if (busy || cells.length === 0 || ![...cells].every((c) => c.textContent?.startsWith(expected)))
          return false;
        return performance.now() - (window as unknown as { lastKey: number }).lastKey;
      },
      target,
      { polling: "raf", timeout: 60_000 },
    );
    search.push((await handle.jsonValue()) as number);
  }
  const fmt = (v: number) => `${v.toFixed(0)} ms`;
  console.log(`contacts: ${N.toLocaleString()} (SQLite), ${RUNS} runs each, medians:`);
  console.log(
    `navigation → first row painted: ${fmt(median(firstRow))} (runs: ${firstRow.map(fmt).join(", ")})`,
  );
  console.log(
    `last keystroke → results shown: ${fmt(median(search))}, of which ${DEBOUNCE_MS} ms debounce → ${fmt(median(search) - DEBOUNCE_MS)} request + render (runs: ${search.map(fmt).join(", ")})`,
  );
} finally {
  await b.close();
  await f.close();
}
