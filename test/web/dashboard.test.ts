/**
 * The short dashboard check: `GET /` is the dashboard with its own strict
 * Content-Security-Policy (the API keeps its deny-all one), and it loads in
 * Chromium without a CSP violation, says so for a wrong key and lists the
 * contacts for the right one. The long journey is dashboard.slow.test.ts.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { DASHBOARD_CSP } from "../../src/http/dashboard.ts";
import { type Browser, launchBrowser } from "../helpers/browser.ts";
import { storeKinds } from "../helpers/env.ts";
import { type DashboardFixture, startDashboardFixture } from "./dashboard-fixture.ts";

for (const kind of storeKinds()) {
  describe(`dashboard served at / [${kind}]`, { timeout: 300_000 }, () => {
    let f: DashboardFixture;
    let b: Browser | undefined;
    before(async () => {
      f = await startDashboardFixture(kind, { people: 3 });
    });
    after(async () => {
      await b?.close();
      await f?.close();
    });

    test("the page, its script and stylesheet carry the dashboard's policy; the API keeps deny-all", async () => {
      const page = await fetch(`${f.url}/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
      assert.equal(page.headers.get("content-security-policy"), DASHBOARD_CSP);
      assert.match(DASHBOARD_CSP, /script-src 'self'(;|$)/);
      assert.doesNotMatch(DASHBOARD_CSP, /unsafe-inline|unsafe-eval|https?:/);
      const html = await page.text();
      assert.doesNotMatch(html, /<script>|<style|style=/, "no inline script or style");
      for (const [path, type] of [
        ["/app/app.js", /javascript/],
        ["/app/app.css", /text\/css/],
      ] as const) {
        const res = await fetch(`${f.url}${path}`);
        assert.equal(res.status, 200, path);
        assert.match(res.headers.get("content-type") ?? "", type);
        assert.equal(res.headers.get("content-security-policy"), DASHBOARD_CSP);
      }
      const api = await fetch(`${f.url}/v1/health`);
      assert.equal(api.headers.get("content-security-policy"), "default-src 'none'; frame-ancestors 'none'");
      const missing = await fetch(`${f.url}/app/nope.js`);
      assert.equal(missing.status, 404);
    });

    test("in Chromium: a wrong key is refused with the API's message, the right one lists the contacts", async () => {
      b = await launchBrowser();
      const { page } = b;
      await page.goto(f.url);
      await page.getByLabel("API key").fill("pb_live_not-a-key-not-a-key-not-a-key-0");
      await page.getByRole("button", { name: "Sign in" }).click();
      const alert = page.getByRole("alert").filter({ hasText: "That API key was refused" });
      await alert.waitFor();
      assert.match(await alert.innerText(), /The API key is not valid\./);
      await page.getByLabel("API key").fill(f.key);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("link", { name: "Person 002" }).waitFor();
      assert.equal(await page.locator("table.contacts td.name").count(), 3);
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.getByRole("alert").filter({ hasText: "You are signed out." }).waitFor();
      assert.equal(await page.evaluate(() => sessionStorage.getItem("phonebook.api_key")), null);
      assert.deepEqual(b.problems, [], "no page error or CSP violation");
    });
  });
}
