/**
 * The dashboard in a real browser (Debian's Chromium, headless, through
 * playwright-core) against a real server process, on each store: sign in,
 * search, reload, scroll, open a contact, edit it, a 409, label 3 contacts
 * at once, labels page, import a CSV and watch it finish, export, the bad
 * inputs (wrong file, too large, lost connection, expired key), 360 px.
 * Screenshots go to docs/screenshots/ (SQLite run).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Page } from "playwright-core";
import { Webhook } from "standardwebhooks";
import { createApiKey } from "../../src/domain/organizations.ts";
import { type Browser, launchBrowser } from "../helpers/browser.ts";
import { storeKinds } from "../helpers/env.ts";
import { type DashboardFixture, startDashboardFixture } from "./dashboard-fixture.ts";

const SCREENSHOTS = join(import.meta.dirname, "..", "..", "docs", "screenshots");

async function signIn(page: Page, url: string, key: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Contacts" }).waitFor();
}

/** The contact rows rendered (the table is windowed: only those near the screen are in the DOM). */
const rows = (page: Page) => page.locator("table.contacts tbody tr.crow");

/** Waits until the table has loaded `n` contacts ("n shown") and is not loading. */
async function rowCountIs(page: Page, n: number): Promise<void> {
  await page.waitForFunction(
    (expected) =>
      document.querySelector("table.contacts")?.getAttribute("aria-busy") === "false" &&
      new RegExp(`^${expected} shown`).test(
        (document.querySelector("p.count")?.textContent ?? "").replaceAll(",", ""),
      ),
    n,
    { timeout: 60_000 },
  );
}

for (const kind of storeKinds()) {
  describe(`dashboard in Chromium [${kind}]`, { timeout: 600_000 }, () => {
    let f: DashboardFixture;
    let b: Browser;
    before(async () => {
      f = await startDashboardFixture(kind);
      b = await launchBrowser();
    });
    after(async () => {
      await b?.close();
      await f?.close();
    });

    test("sign in: a wrong key says so, the right one shows the contacts", async () => {
      const { page } = b;
      await page.goto(f.url);
      await page.getByLabel("API key").fill("pb_live_wrongwrongwrongwrongwrongwrong12");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("alert").filter({ hasText: "That API key was refused" }).waitFor();
      assert.match(await page.getByRole("alert").innerText(), /invalid_api_key/);
      await signIn(page, f.url, f.key);
      await rowCountIs(page, 50);
      // The key lives in sessionStorage, never in the URL.
      assert.ok(!page.url().includes(f.key));
      assert.equal(await page.evaluate(() => sessionStorage.getItem("phonebook.api_key")), f.key);
    });

    test("infinite scroll walks the cursor pages to the end", async () => {
      const { page } = b;
      await page.locator("tr.more").scrollIntoViewIfNeeded();
      await rowCountIs(page, 63);
      assert.equal(await page.locator("tr.more").count(), 0, "no more pages");
      await page.getByText("63 shown").waitFor();
    });

    test("search as you type; the URL keeps the view across a reload", async () => {
      const { page } = b;
      await page.getByLabel("Search").pressSequentially("zed", { delay: 30 });
      await rowCountIs(page, 3);
      assert.match(page.url(), /search=zed/);
      assert.deepEqual((await rows(page).locator("td.name").allInnerTexts()).sort(), [
        "Zed Alpha",
        "Zed Bravo",
        "Zed Charlie",
      ]);
      await page.reload();
      await page.getByRole("heading", { name: "Contacts" }).waitFor();
      await rowCountIs(page, 3);
      assert.equal(await page.getByLabel("Search").inputValue(), "zed");
      // Filters: opted-out contacts (none) and back.
      await page.getByLabel("Marketing").selectOption("true");
      await page.getByText("No contacts match this view.").waitFor();
      assert.match(page.url(), /opt_out=true/);
      await page.getByLabel("Marketing").selectOption("");
      await rowCountIs(page, 3);
    });

    test("open a contact, edit it, a conflicting phone shows the existing contact", async () => {
      const { page } = b;
      await page.getByRole("link", { name: "Zed Bravo" }).click();
      await page.getByRole("heading", { name: "Zed Bravo" }).waitFor();
      await page.getByRole("heading", { name: "Identity history" }).waitFor();
      await page.getByText("No phone number or BSUID change").waitFor();
      await page.getByLabel("Name", { exact: true }).fill("Zed Bravo Updated");
      await page.getByLabel("Email").fill("bravo@example.com");
      await page.getByLabel("Metadata (JSON object)").fill('{"tier": "platinum"}');
      await page.getByRole("button", { name: "Save" }).click();
      await page.getByRole("status").filter({ hasText: "Saved." }).waitFor();
      await page.getByRole("heading", { name: "Zed Bravo Updated" }).waitFor();
      const id = decodeURIComponent(page.url().split("#/contacts/")[1] ?? "");
      const stored = (await f.api("GET", `/contacts/${id}`)).data;
      assert.equal(stored.name, "Zed Bravo Updated");
      assert.equal(stored.email, "bravo@example.com");
      assert.deepEqual(stored.metadata, { tier: "platinum" });

      // Zed Alpha's phone: 409 contact_exists, shown with a link to that contact.
      await page.getByLabel("Phone").fill("+628139000000");
      await page.getByRole("button", { name: "Save" }).click();
      await page.getByRole("alert").filter({ hasText: "contact_exists" }).waitFor();
      const link = page.getByRole("link", { name: /open the existing contact/ });
      await link.click();
      await page.getByRole("heading", { name: "Zed Alpha" }).waitFor();
    });

    test("delete a contact after confirming", async () => {
      const { page } = b;
      const phone = "+6281299999999";
      const created = (
        await f.api("POST", `/${f.phoneNumberId}/contacts`, { phone_number: phone, name: "Doomed" }, 201)
      ).data;
      await page.goto(`${f.url}/#/contacts/${created.id}`);
      await page.getByRole("heading", { name: "Doomed" }).waitFor();
      await page.getByRole("button", { name: "Delete contact" }).click();
      const dialog = page.getByRole("dialog");
      await dialog.getByRole("button", { name: "Cancel" }).click();
      await f.api("GET", `/contacts/${created.id}`);
      await page.getByRole("button", { name: "Delete contact" }).click();
      await dialog.getByRole("button", { name: "Delete" }).click();
      await page.getByRole("heading", { name: "Contacts" }).waitFor();
      await f.api("GET", `/contacts/${created.id}`, undefined, 404);
    });

    test("labels page: create, rename, colour, delete", async () => {
      const { page } = b;
      await page.getByRole("link", { name: "Labels", exact: true }).click();
      await page.getByRole("textbox", { name: "New label" }).fill("vip");
      await page.getByLabel("Colour of the new label").selectOption("green");
      await page.getByRole("button", { name: "Create" }).click();
      await page.getByRole("status").filter({ hasText: "Label “vip” created." }).waitFor();
      await page.getByRole("textbox", { name: "New label" }).fill("temp");
      await page.getByRole("button", { name: "Create" }).click();
      await page.getByRole("status").filter({ hasText: "Label “temp” created." }).waitFor();
      // A duplicate name: the API's 409 message.
      await page.getByRole("textbox", { name: "New label" }).fill("VIP");
      await page.getByRole("button", { name: "Create" }).click();
      await page.getByRole("alert").filter({ hasText: "label_exists" }).waitFor();
      await page.getByLabel("Name of label temp").fill("later");
      await page.getByLabel("Colour of label temp").selectOption("violet");
      await page
        .locator("li", { has: page.getByLabel("Name of label temp") })
        .getByRole("button", { name: "Save" })
        .click();
      await page.getByRole("status").filter({ hasText: "Label “later” saved." }).waitFor();
      const labels = (await f.api("GET", "/labels")).data;
      const later = labels.find((l: { name: string }) => l.name === "later");
      assert.equal(later?.color, "violet");
      await page
        .locator("li", { has: page.getByLabel("Name of label later") })
        .getByRole("button", { name: "Delete" })
        .click();
      await page.getByRole("dialog").getByRole("button", { name: "Delete label" }).click();
      await page.getByRole("status").filter({ hasText: "Label “later” deleted." }).waitFor();
      assert.deepEqual(
        (await f.api("GET", "/labels")).data.map((l: { name: string }) => l.name),
        ["vip"],
      );
    });

    test("select 3 contacts and label them at once", async () => {
      const { page } = b;
      await page.goto(`${f.url}/#/contacts?search=zed`);
      await rowCountIs(page, 3);
      for (const name of ["Zed Alpha", "Zed Bravo Updated", "Zed Charlie"]) {
        await page.getByRole("checkbox", { name: `Select ${name}` }).check();
      }
      await page.getByText("3 selected").waitFor();
      await page.getByLabel("Label to add or remove").selectOption({ label: "vip" });
      await page.getByRole("button", { name: "Add label" }).click();
      await page.getByRole("status").filter({ hasText: "Attached “vip”: 3 changed" }).waitFor();
      assert.equal(await page.locator("td.labels .chip", { hasText: "vip" }).count(), 3);
      const vip = (await f.api("GET", "/labels")).data[0].id;
      const labelled = (await f.api("GET", `/contacts?label=${vip}&limit=100`)).data;
      assert.deepEqual(labelled.map((c: { name: string }) => c.name).sort(), [
        "Zed Alpha",
        "Zed Bravo Updated",
        "Zed Charlie",
      ]);
      // The label filter shows the same three.
      await page.getByLabel("Search").fill("");
      await page.locator('select[name="label"]').selectOption({ label: "vip" });
      await rowCountIs(page, 3);
      assert.match(page.url(), new RegExp(`label=${vip}`));
      if (kind === "sqlite") {
        // The README's picture: every contact, the three labelled ones on top.
        await page.goto(`${f.url}/#/contacts`);
        await page.reload();
        await rowCountIs(page, 50);
        await page.screenshot({ path: join(SCREENSHOTS, "contacts.png") });
      }
    });

    test("import a CSV: mapping, live progress, exact counts, row errors downloadable", async () => {
      const { page } = b;
      await page.getByRole("link", { name: "Import", exact: true }).click();
      await page.getByRole("heading", { name: "Import contacts" }).waitFor();
      const lines = ["phone_number,name,email,city"];
      for (let i = 0; i < 40; i++)
        lines.push(`+62814${String(2000000 + i)},Imported ${i},imp${i}@example.com,Bandung`);
      lines.push("not-a-phone,Broken Row,,Bandung");
      lines.push("+628121000000,Person 000 renamed,,Jakarta");
      await page.locator('input[type="file"]').setInputFiles({
        name: "customers.csv",
        mimeType: "text/csv",
        buffer: Buffer.from(`${lines.join("\n")}\n`),
      });
      const mapping = page.locator("table.mapping");
      await mapping.waitFor();
      assert.deepEqual(await mapping.locator("tbody tr td:first-child").allInnerTexts(), [
        "phone_number",
        "name",
        "email",
        "city",
      ]);
      assert.match(await mapping.innerText(), /metadata “city”/);
      await page.getByRole("button", { name: "Start import" }).click();
      await page.locator(".status.s-completed").waitFor({ timeout: 120_000 });
      const counts = await page.locator("dl.counts dd").allInnerTexts();
      assert.deepEqual(counts, ["40", "1", "0", "1"], "created, updated, unchanged, failed");
      await page.getByText("42 of 42 rows processed (100%)").waitFor();
      if (kind === "sqlite") await page.screenshot({ path: join(SCREENSHOTS, "import.png"), fullPage: true });
      const download = page.waitForEvent("download");
      await page.getByRole("button", { name: "Download row errors (CSV)" }).click();
      const file = await (await download).path();
      const text = readFileSync(file, "utf8");
      assert.match(text, /^row,line,code,param,message\n41,42,invalid_phone_number,/);
    });

    test("bad files are refused before upload; a lost connection says so and loses nothing", async () => {
      const { page } = b;
      await page.locator('input[type="file"]').setInputFiles({
        name: "photo.png",
        mimeType: "image/png",
        buffer: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0]),
      });
      await page.getByRole("alert").filter({ hasText: "is not a CSV or NDJSON file" }).waitFor();
      // 200 MiB, made in the page (nothing that large crosses the test's wire).
      await page.evaluate(() => {
        const input = document.querySelector<HTMLInputElement>('input[type="file"]')!;
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(200 * 1024 * 1024)], "huge.csv", { type: "text/csv" }));
        input.files = dt.files;
        input.dispatchEvent(new Event("change", { bubbles: true }));
      });
      await page
        .getByRole("alert")
        .filter({ hasText: "“huge.csv” is 200.0 MiB; an import takes at most 100 MiB" })
        .waitFor();

      const before = (await f.api("GET", "/imports")).data.length;
      await page.locator('input[type="file"]').setInputFiles({
        name: "more.csv",
        mimeType: "text/csv",
        buffer: Buffer.from("phone_number,name\n+6281500000001,Late One\n"),
      });
      await page.route("**/v1/imports?**", (route) => route.abort("connectionreset"));
      await page.getByRole("button", { name: "Start import" }).click();
      await page
        .getByRole("alert")
        .filter({ hasText: "The connection was lost during the upload" })
        .waitFor();
      assert.equal((await f.api("GET", "/imports")).data.length, before, "nothing reached the server");
      await page.unroute("**/v1/imports?**");
      await page.getByRole("button", { name: "Try again" }).click();
      await page.locator(".status.s-completed").waitFor({ timeout: 120_000 });
      assert.deepEqual(await page.locator("dl.counts dd").allInnerTexts(), ["1", "0", "0", "0"]);

      // After a reload the imports are listed with their counts, and one can be shown again.
      await page.reload();
      const recent = page.locator("table.imports tbody tr");
      await page.waitForFunction(() => document.querySelectorAll("table.imports tbody tr").length === 2);
      assert.match(await recent.nth(0).innerText(), /completed[\s\S]*1 of 1: 1 created, 0 updated, 0 failed/);
      assert.match(
        await recent.nth(1).innerText(),
        /completed[\s\S]*42 of 42: 40 created, 1 updated, 1 failed/,
      );
      await recent.nth(1).getByRole("button", { name: "Show" }).click();
      await page.locator(".status.s-completed").waitFor();
      assert.deepEqual(await page.locator("dl.counts dd").allInnerTexts(), ["40", "1", "0", "1"]);
      await page.getByRole("button", { name: "Download row errors (CSV)" }).waitFor();
    });

    test("export the current filter as CSV and as NDJSON, streamed to a download", async () => {
      const { page } = b;
      await page.goto(`${f.url}/#/contacts?search=imported`);
      await rowCountIs(page, 40);
      let download = page.waitForEvent("download");
      await page.getByRole("button", { name: "Export CSV" }).click();
      let text = readFileSync(await (await download).path(), "utf8");
      const csvLines = text.trimEnd().split("\n");
      assert.match(csvLines[0] ?? "", /^id,phone_number,name,/);
      assert.equal(csvLines.length, 41, "header + the 40 matching contacts");
      await page.getByText(/Exported .* as CSV\./).waitFor();
      download = page.waitForEvent("download");
      await page.getByRole("button", { name: "Export NDJSON" }).click();
      text = readFileSync(await (await download).path(), "utf8");
      const records = text
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l));
      assert.equal(records.length, 40);
      assert.ok(records.every((r) => /^Imported \d+$/.test(r.name)));
    });

    test("360 px wide: no horizontal scroll of the page, table usable", async () => {
      const { page } = b;
      await page.setViewportSize({ width: 360, height: 740 });
      await page.goto(`${f.url}/#/contacts`);
      await page.reload();
      await rowCountIs(page, 50);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `page is ${overflow}px wider than the viewport`);
      if (kind === "sqlite") await page.screenshot({ path: join(SCREENSHOTS, "contacts-360.png") });
      // Keyboard: Tab reaches the search box and a contact link.
      await page.getByLabel("Search").focus();
      await page.keyboard.type("Zed Alpha");
      await rowCountIs(page, 1);
      await page.keyboard.press("Tab");
      for (let i = 0; i < 40; i++) {
        if (await page.evaluate(() => document.activeElement?.textContent === "Zed Alpha")) break;
        await page.keyboard.press("Tab");
      }
      await page.keyboard.press("Enter");
      await page.getByRole("heading", { name: "Zed Alpha" }).waitFor();
      await page.setViewportSize({ width: 1280, height: 800 });
    });

    test("an expired key: a clear message and back to sign-in", async () => {
      const { page } = b;
      const db = f.testStore.store.db;
      await db
        .updateTable("api_keys")
        .set({ expires_at: Date.now() - 1000 })
        .where("organization_id", "=", f.orgId)
        .execute();
      // The server caches keys for a few seconds: wait until it answers "expired".
      const deadline = Date.now() + 60_000;
      for (;;) {
        const res = await fetch(`${f.url}/v1/me`, { headers: { authorization: `Bearer ${f.key}` } });
        if (res.status === 401) break;
        assert.ok(Date.now() < deadline, "the key never expired");
        await new Promise((r) => setTimeout(r, 250));
      }
      await page.goto(`${f.url}/#/import`);
      await page.getByRole("alert").filter({ hasText: "Your API key has expired" }).waitFor();
      await page.getByLabel("API key").waitFor();
      assert.equal(await page.evaluate(() => sessionStorage.getItem("phonebook.api_key")), null);
      // Nothing is lost: with a new key the same view comes back, the imports and their counts with it.
      const { key } = await createApiKey(db, f.orgId, { label: "after expiry" });
      await page.getByLabel("API key").fill(key);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("heading", { name: "Import contacts" }).waitFor();
      await page.waitForFunction(() => document.querySelectorAll("table.imports tbody tr").length === 2);
      assert.match(
        await page.locator("table.imports tbody tr").nth(1).innerText(),
        /42 of 42: 40 created, 1 updated, 1 failed/,
      );
      assert.deepEqual(b.problems, [], "no page error or CSP violation");
    });
  });
}

const noSideScroll = async (page: Page) => {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page is ${overflow}px wider than the viewport`);
};

/** Geometry of the windowed contacts table, read in the page. */
interface TableGeometry {
  loaded: number;
  rendered: number;
  firstIndex: number;
  rowHeights: number[];
  /** Offset of the first rendered row from the top of the tbody, and the gaps between rendered rows. */
  firstOffset: number;
  maxGap: number;
  scrollHeight: number;
}

const geometry = (page: Page): Promise<TableGeometry> =>
  page.evaluate(() => {
    const body = document.querySelector("table.contacts tbody")!;
    const trs = [...body.querySelectorAll<HTMLElement>("tr.crow")];
    const boxes = trs.map((tr) => tr.getBoundingClientRect());
    let maxGap = 0;
    for (let i = 1; i < boxes.length; i++)
      maxGap = Math.max(maxGap, Math.abs(boxes[i]!.top - boxes[i - 1]!.bottom));
    return {
      loaded: Number(
        (document.querySelector("p.count")?.textContent ?? "").replaceAll(",", "").split(" ")[0],
      ),
      rendered: trs.length,
      firstIndex: Number(trs[0]?.getAttribute("aria-rowindex") ?? 2) - 2,
      rowHeights: boxes.map((b) => b.height),
      firstOffset: (boxes[0]?.top ?? 0) - body.getBoundingClientRect().top,
      maxGap,
      scrollHeight: document.documentElement.scrollHeight,
    };
  });

for (const kind of storeKinds()) {
  describe(`dashboard: a long contacts table in Chromium [${kind}]`, { timeout: 600_000 }, () => {
    let f: DashboardFixture;
    let b: Browser;
    before(async () => {
      f = await startDashboardFixture(kind, { people: 1200 });
      b = await launchBrowser();
    });
    after(async () => {
      await b?.close();
      await f?.close();
    });

    test("loaded rows are windowed: the DOM stays small while the table grows, a far row opens", async () => {
      const { page } = b;
      await signIn(page, f.url, f.key);
      await rowCountIs(page, 50);
      // Scroll to the end again and again: 12 pages of 50.
      const seen: TableGeometry[] = [];
      for (let loaded = 50; loaded < 600; loaded += 50) {
        await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
        await rowCountIs(page, loaded + 50);
        seen.push(await geometry(page));
      }
      const last = seen.at(-1)!;
      assert.equal(last.loaded, 600);
      for (const g of seen) {
        assert.ok(
          g.rendered > 10 && g.rendered <= 80,
          `${g.rendered} rows in the DOM for ${g.loaded} loaded`,
        );
        // No layout jump: the rows before the window are exactly a spacer of their height.
        const h = g.rowHeights[0]!;
        assert.ok(
          g.rowHeights.every((x) => Math.abs(x - h) < 0.5),
          "rows of one height",
        );
        assert.ok(
          Math.abs(g.firstOffset - g.firstIndex * h) < 1,
          `row ${g.firstIndex} at ${g.firstOffset}px, expected ${g.firstIndex * h}px`,
        );
        assert.ok(g.maxGap < 1, "rendered rows are contiguous");
      }
      assert.ok(last.firstIndex > 400, "the window follows the scroll");
      for (let i = 1; i < seen.length; i++)
        assert.ok(seen[i]!.scrollHeight > seen[i - 1]!.scrollHeight, "the page grows with every page loaded");
      assert.ok(last.scrollHeight > 600 * last.rowHeights[0]!, "the page is as tall as every loaded row");

      // A row far up, reached by scrolling back: the same contact the API lists at that position.
      const index = 137;
      const listed: Array<{ id: string; name: string }> = [];
      let cursor: string | null = null;
      do {
        const pageOf: { data: Array<{ id: string; name: string }>; next_cursor: string | null } = await f.api(
          "GET",
          `/contacts?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
        );
        listed.push(...pageOf.data);
        cursor = pageOf.next_cursor;
      } while (listed.length <= index && cursor);
      const expected = listed[index]!;
      await page.evaluate(
        ({ i, h }) => {
          const body = document.querySelector("table.contacts tbody")!;
          window.scrollTo(0, body.getBoundingClientRect().top + window.scrollY + i * h - 200);
        },
        { i: index, h: last.rowHeights[0]! },
      );
      const row = page.locator(`table.contacts tr.crow[aria-rowindex="${index + 2}"]`);
      await row.waitFor();
      assert.equal(await row.locator("td.name a").innerText(), expected.name);
      assert.ok((await geometry(page)).rendered <= 80);
      await row.locator("td.name a").click();
      await page.getByRole("heading", { name: expected.name }).waitFor();
      assert.match(page.url(), new RegExp(`#/contacts/${expected.id}$`));
    });

    test("keyboard: Tab walks down the rows past the first window; 360 px rows keep one height", async () => {
      const { page } = b;
      await page.goto(`${f.url}/#/contacts`);
      await rowCountIs(page, 50);
      await rows(page).first().locator("td.name a").focus();
      // Each row has two stops (checkbox, name): 140 Tabs walk 70 rows, past the first page.
      let index = 0;
      for (let i = 0; i < 140; i++) {
        await page.keyboard.press("Tab");
        index = await page.evaluate(() =>
          Number(document.activeElement?.closest("tr.crow")?.getAttribute("aria-rowindex") ?? -1),
        );
        assert.ok(index > 0, `focus left the table after ${i + 1} Tabs`);
      }
      assert.ok(index >= 60, `focus on row ${index}`);
      const inView = await page.evaluate(() => {
        const r = document.activeElement!.getBoundingClientRect();
        return r.top >= 0 && r.bottom <= window.innerHeight;
      });
      assert.ok(inView, "the focused row is on screen");
      const g = await geometry(page);
      assert.ok(g.loaded >= 100, "the next page was loaded on the way");
      assert.ok(g.rendered <= 80 && g.firstIndex > 0, `${g.rendered} rows from ${g.firstIndex}`);
      await page.keyboard.press("Enter");
      await page.getByRole("button", { name: "Delete contact" }).waitFor();

      await page.setViewportSize({ width: 360, height: 740 });
      await page.goto(`${f.url}/#/contacts`);
      await rowCountIs(page, 50);
      await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
      await rowCountIs(page, 100);
      await page.evaluate(() => window.scrollTo(0, 3000));
      await page.waitForFunction(
        () => document.querySelector("table.contacts tr.crow")?.getAttribute("aria-rowindex") !== "2",
      );
      const small = await geometry(page);
      const h = small.rowHeights[0]!;
      assert.ok(
        small.rowHeights.every((x) => Math.abs(x - h) < 0.5),
        `one row height at 360 px: ${small.rowHeights.join(", ")}`,
      );
      assert.ok(Math.abs(small.firstOffset - small.firstIndex * h) < 1, "no layout jump at 360 px");
      await noSideScroll(page);
      await page.setViewportSize({ width: 1280, height: 800 });
      assert.deepEqual(b.problems, [], "no page error or CSP violation");
    });
  });
}

/** A webhook receiver on 127.0.0.1 that answers 200 and records what it got. */
async function startReceiver(): Promise<{
  url: string;
  got: Array<{ headers: IncomingHttpHeaders; body: string }>;
  server: Server;
}> {
  const got: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      got.push({ headers: req.headers, body });
      res.writeHead(200, { "content-type": "text/plain" }).end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hook`, got, server };
}

for (const kind of storeKinds()) {
  describe(`dashboard webhooks and merges in Chromium [${kind}]`, { timeout: 600_000 }, () => {
    let f: DashboardFixture;
    let b: Browser;
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    before(async () => {
      receiver = await startReceiver();
      f = await startDashboardFixture(
        kind,
        { people: 3 },
        { WEBHOOKS_ALLOW_HTTP: "true", WEBHOOKS_ALLOW_PRIVATE: "true" },
      );
      b = await launchBrowser();
    });
    after(async () => {
      await b?.close();
      await f?.close();
      await new Promise((resolve) => receiver?.server.close(resolve));
    });

    test("webhooks: create an endpoint, secret once, test ping delivered, replay, disable, delete", async () => {
      const { page } = b;
      await signIn(page, f.url, f.key);
      await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Webhooks" }).click();
      await page.getByRole("heading", { name: "Webhooks" }).waitFor();
      await page.getByText("No endpoints yet.").waitFor();

      // The API's refusal is shown as its message.
      await page.getByLabel("Endpoint URL").fill("ftp://example.com/hook");
      await page.getByRole("button", { name: "Add endpoint" }).click();
      const refusal = page.getByRole("alert");
      await refusal.waitFor();
      assert.match(await refusal.innerText(), /\(\w+\)/, "the message and its code");

      await page.getByLabel("Endpoint URL").fill(receiver.url);
      await page.getByLabel("Description").fill("CRM sync");
      await page.getByLabel("contact.created").check();
      await page.getByLabel("contact.merged").check();
      await page.getByLabel("Send every contact of an import").check();
      await page.getByRole("button", { name: "Add endpoint" }).click();
      await page.getByRole("status").filter({ hasText: "created" }).waitFor();
      const secret = await page.getByLabel("Signing secret").inputValue();
      assert.match(secret, /^whsec_/);
      const subs = (await f.api("GET", "/webhook_subscriptions")).data;
      assert.equal(subs.length, 1);
      assert.deepEqual([...subs[0].events].sort(), ["contact.created", "contact.merged"]);
      assert.equal(subs[0].description, "CRM sync");
      assert.equal(subs[0].include_import_contacts, true);
      assert.equal(subs[0].secret, undefined, "the list never shows the secret");

      await page.getByRole("button", { name: "Send test ping" }).click();
      const table = page.locator("table.deliveries");
      await table.locator('tr[data-status="succeeded"]').first().waitFor({ timeout: 60_000 });
      assert.match(await table.locator("tbody tr").first().innerText(), /ping[\s\S]*succeeded[\s\S]*200/);
      assert.equal(receiver.got.length, 1);
      assert.equal(JSON.parse(receiver.got[0]?.body ?? "{}").type, "ping");
      assert.ok(receiver.got[0]?.headers["webhook-signature"], "signed");

      await table.getByRole("button", { name: "Replay" }).first().click();
      await page.getByRole("status").filter({ hasText: "queued again" }).waitFor();
      await page.waitForFunction(
        () => document.querySelectorAll('table.deliveries tbody tr[data-status="succeeded"]').length === 2,
        undefined,
        { timeout: 60_000 },
      );
      await table.getByText("(replay)").waitFor();
      assert.equal(receiver.got.length, 2);
      assert.equal(
        receiver.got[1]?.headers["webhook-id"],
        receiver.got[0]?.headers["webhook-id"],
        "the same event",
      );
      if (kind === "sqlite")
        await page.screenshot({ path: join(SCREENSHOTS, "webhooks.png"), fullPage: true });

      await page.getByRole("button", { name: "Disable" }).click();
      await page.getByRole("status").filter({ hasText: "Endpoint disabled." }).waitFor();
      assert.equal((await f.api("GET", "/webhook_subscriptions")).data[0].enabled, false);
      await page.getByRole("button", { name: "Enable" }).click();
      await page.getByRole("status").filter({ hasText: "Endpoint enabled." }).waitFor();
      assert.equal((await f.api("GET", "/webhook_subscriptions")).data[0].enabled, true);

      // Edit: the form starts from the endpoint's values; only what changed is sent.
      await page.getByRole("button", { name: "Edit" }).click();
      const edit = page.getByRole("form", { name: /^Edit the endpoint/ });
      assert.equal(await edit.getByLabel("Description").inputValue(), "CRM sync");
      assert.equal(await edit.getByLabel("contact.created").isChecked(), true);
      assert.equal(await edit.getByLabel("Send every contact of an import").isChecked(), true);
      await edit.getByLabel("Description").fill("CRM sync (all events)");
      await edit.getByLabel("Send every contact of an import").uncheck();
      await edit.getByLabel("contact.created").uncheck();
      await edit.getByLabel("contact.merged").uncheck();
      await edit.getByRole("button", { name: "Save endpoint" }).click();
      await page.getByRole("status").filter({ hasText: "saved." }).waitFor();
      let sub = (await f.api("GET", "/webhook_subscriptions")).data[0];
      assert.equal(sub.description, "CRM sync (all events)");
      assert.equal(sub.include_import_contacts, false);
      assert.deepEqual(sub.events, ["*"], "none ticked: every event");
      await page.getByText("Imports: import.completed only").waitFor();

      // Rotate the secret: a confirmation, the new secret once, the old one signs for 24 h more.
      await page.getByRole("button", { name: "Rotate secret" }).click();
      const dialog = page.getByRole("dialog");
      assert.match(await dialog.innerText(), /24 hours/);
      await dialog.getByRole("button", { name: "Rotate secret" }).click();
      await page.getByRole("status").filter({ hasText: "New signing secret for" }).waitFor();
      const box = page.locator(".endpoint").getByLabel("Signing secret");
      const rotated = await box.inputValue();
      assert.match(rotated, /^whsec_/);
      assert.notEqual(rotated, secret);
      assert.match(
        await page.locator(".endpoint .secret").innerText(),
        /shown only now[\s\S]*old secret keeps signing alongside it for 24 hours, until /,
      );
      sub = (await f.api("GET", "/webhook_subscriptions")).data[0];
      const expires = Date.parse(sub.previous_secret_expires_at);
      assert.ok(Math.abs(expires - (Date.now() + 24 * 3600_000)) < 10 * 60_000, "about 24 h from now");
      // A delivery now carries both signatures: a receiver with either secret accepts it.
      const pings = receiver.got.length;
      await page.getByRole("button", { name: "Send test ping" }).click();
      await page.waitForFunction(
        () => document.querySelectorAll('table.deliveries tbody tr[data-status="succeeded"]').length === 3,
        undefined,
        { timeout: 60_000 },
      );
      const signed = receiver.got[pings]!;
      for (const s of [secret, rotated])
        new Webhook(s).verify(signed.body, signed.headers as Record<string, string>);
      // After a reload the secret is gone for good; the card says until when the old one signs.
      await page.reload();
      await page.getByText("The previous signing secret also signs until").waitFor();
      assert.equal(await page.getByLabel("Signing secret").count(), 0);
    });

    test("duplicates: a pair with its reason, merged side by side with a per-field choice, then undone", async () => {
      const { page } = b;
      const a = (
        await f.api("POST", `/${f.phoneNumberId}/contacts`, {
          phone_number: "+6281399911111",
          name: "Ana Dup",
          email: "ana@dup.example",
          metadata: { city: "Bandung" },
        })
      ).data;
      const bb = (
        await f.api("POST", `/${f.phoneNumberId}/contacts`, {
          phone_number: "+6281399922222",
          name: "Ana Duplicate",
          email: "ANA@dup.example",
          metadata: { tier: "gold" },
        })
      ).data;
      await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Duplicates" }).click();
      await page.getByRole("heading", { name: "Duplicates" }).waitFor();
      const pair = page.locator("li.pair").filter({ hasText: "Ana Dup" });
      await pair.getByText("same email").waitFor();
      await pair.getByRole("link", { name: "Review and merge" }).click();
      await page.getByRole("heading", { name: "Merge two contacts" }).waitFor();

      // Keep Ana Dup (whichever column the pair lists it in) but take the other's name.
      await page.getByRole("radio", { name: /^Keep [AB]: Ana Dup$/ }).check();
      const other = await page
        .locator("fieldset.survivor label")
        .filter({ hasText: "Ana Duplicate" })
        .innerText();
      const letter = /Keep ([AB])/.exec(other)?.[1];
      assert.ok(letter);
      await page.getByLabel(`Name: use ${letter}`, { exact: true }).check();
      await page.waitForFunction(
        () => document.querySelector('tr[data-field="name"] td:last-child')?.textContent === "Ana Duplicate",
        undefined,
        { timeout: 60_000 },
      );
      const meta = await page.locator('tr[data-field="metadata"] td:last-child').innerText();
      assert.match(meta, /Bandung/);
      assert.match(meta, /gold/);
      if (kind === "sqlite") await page.screenshot({ path: join(SCREENSHOTS, "merge.png"), fullPage: true });

      await page.getByRole("button", { name: "Merge", exact: true }).click();
      await page.getByRole("status").filter({ hasText: "Merged." }).waitFor();
      const survivor = (await f.api("GET", `/contacts/${a.id}`)).data;
      assert.equal(survivor.name, "Ana Duplicate");
      assert.deepEqual(survivor.metadata, { city: "Bandung", tier: "gold" });
      const old = await f.api("GET", `/contacts/${bb.id}`);
      assert.equal(old.merged_into, a.id);
      assert.equal(
        await page.getByRole("link", { name: "Open the merged contact" }).getAttribute("href"),
        `#/contacts/${a.id}`,
      );

      await page.getByRole("button", { name: "Undo merge" }).click();
      await page.getByRole("status").filter({ hasText: "The merge was undone" }).waitFor();
      assert.equal((await f.api("GET", `/contacts/${a.id}`)).data.name, "Ana Dup");
      const back = await f.api("GET", `/contacts/${bb.id}`);
      assert.equal(back.merged_into, undefined);
      assert.equal(back.data.name, "Ana Duplicate");
    });

    test("360 px and keyboard: webhooks and merge screen", async () => {
      const { page } = b;
      await page.setViewportSize({ width: 360, height: 740 });
      await page.goto(`${f.url}/#/webhooks`);
      await page.getByRole("button", { name: "Send test ping" }).waitFor();
      await noSideScroll(page);
      const pair = (await f.api("GET", "/contacts/duplicates")).data.find(
        (p: { contacts: Array<{ name: string }> }) => p.contacts.some((c) => c.name === "Ana Dup"),
      );
      assert.ok(pair, "the pair is a duplicate again after the undo");
      await page.goto(`${f.url}/#/duplicates`);
      await page.getByRole("link", { name: "Review and merge" }).first().waitFor();
      await noSideScroll(page);
      // Keyboard only: Tab to "Review and merge", Enter, then Tab to the survivor choice.
      for (let i = 0; i < 40; i++) {
        await page.keyboard.press("Tab");
        if (await page.evaluate(() => document.activeElement?.textContent === "Review and merge")) break;
      }
      await page.keyboard.press("Enter");
      await page.getByRole("heading", { name: "Merge two contacts" }).waitFor();
      await page.locator('tr[data-field="email"] td:last-child').filter({ hasText: "@" }).waitFor();
      await noSideScroll(page);
      if (kind === "sqlite")
        await page.screenshot({ path: join(SCREENSHOTS, "merge-360.png"), fullPage: true });
      for (let i = 0; i < 40; i++) {
        await page.keyboard.press("Tab");
        if (
          await page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.name === "survivor")
        )
          break;
      }
      assert.equal(
        await page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.name),
        "survivor",
      );
      await page.setViewportSize({ width: 1280, height: 800 });

      // A contact changed after the screen loaded: the API's 409 is shown, nothing is merged.
      await page.getByRole("button", { name: "Merge", exact: true }).waitFor();
      await page.locator('tr[data-field="email"] td:last-child').filter({ hasText: "@" }).waitFor();
      const [first] = pair.contacts as Array<{ id: string }>;
      await f.api("PATCH", `/contacts/${first?.id}`, { metadata: { note: "changed meanwhile" } });
      await page.getByRole("button", { name: "Merge", exact: true }).click();
      await page.getByRole("alert").filter({ hasText: "contact_changed" }).waitFor();
      const still = (await f.api("GET", "/contacts/duplicates")).data as Array<{ id: string }>;
      assert.ok(
        still.some((p) => p.id === pair.id),
        "not merged",
      );

      // Delete an endpoint after confirming.
      await page.goto(`${f.url}/#/webhooks`);
      await page.getByRole("button", { name: "Delete" }).click();
      await page.getByRole("dialog").getByRole("button", { name: "Delete endpoint" }).click();
      await page.getByText("No endpoints yet.").waitFor();
      assert.equal((await f.api("GET", "/webhook_subscriptions")).data.length, 0);
      assert.deepEqual(b.problems, [], "no page error or CSP violation");
    });
  });
}
