import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parse } from "csv-parse/sync";
import { bulkInsertContacts } from "../../../bench/lib/bulk-insert.ts";
import { contactFilters, createContact } from "../../../src/domain/contacts.ts";
import { contactOut } from "../../../src/http/native/representation.ts";
import { CSV_COLUMNS, exportContacts } from "../../../src/jobs/export.ts";
import { findAccountByPhoneNumberId } from "../../../src/store/repositories/accounts.ts";
import { storeKinds } from "../../helpers/env.ts";
import {
  createHarness,
  createTestStore,
  type Harness,
  type Json,
  seedOrganization,
  type Tenant,
} from "../../helpers/harness.ts";
import { waitForImport } from "../../helpers/imports.ts";
import { startServerProcess } from "../../helpers/server-process.ts";

for (const kind of storeKinds()) {
  describe(`export and round trip [${kind}]`, () => {
    let h: Harness;
    let t: Tenant;
    let source: { id: string; phoneNumberId: string };
    let labels: Json[];
    before(async () => {
      h = await createHarness(kind);
      t = await h.tenant("Export Co");
      source = await h.account(t.orgId);
      labels = [];
      for (const name of ["VIP", "a|b", "Ünïcode ✓"]) {
        labels.push(
          (await h.inject({ method: "POST", url: "/v1/labels", headers: t.auth, payload: { name } })).json()
            .data,
        );
      }
      const contacts: Json[] = [
        {
          phone_number: "+628300000001",
          name: 'Doe, "Johnny", the second',
          email: "john@example.com",
          metadata: { tier: "gold", score: 7, active: true, address: "Jl. Merdeka 1,\nJakarta" },
          labels: labels.map((l) => l.id),
        },
        { phone_number: "+628300000002", name: " spaced " },
        { business_scoped_user_id: "US.777" },
        { phone_number: "+628300000003", metadata: { note: 'comma, and "quote"' }, labels: [labels[0].id] },
      ];
      for (let i = 0; i < 30; i++)
        contacts.push({ phone_number: `+62831${String(i).padStart(7, "0")}`, name: `Bulk ${i}` });
      const res = await h.inject({
        method: "POST",
        url: `/v1/${source.phoneNumberId}/contacts/batch`,
        headers: t.auth,
        payload: { mode: "create", contacts },
      });
      assert.deepEqual(res.json().summary, { created: 34, updated: 0, unchanged: 0, failed: 0 });
      // A contact known only by its WhatsApp profile name (as the webhook creates them).
      const account = (await findAccountByPhoneNumberId(h.store.db, source.phoneNumberId))!;
      await createContact(
        { db: h.store.db, organizationId: t.orgId },
        account,
        { phone_number: "+628300000099", profile_name: "Johnny WA" },
        "inbound",
      );
    });
    after(async () => {
      await h.close();
    });

    const exportOf = async (query: string, pnid = source.phoneNumberId) => {
      const res = await h.inject({
        method: "GET",
        url: `/v1/${pnid}/contacts/export?${query}`,
        headers: t.auth,
      });
      assert.equal(res.statusCode, 200, res.body.slice(0, 300));
      return res;
    };
    const importText = async (text: string, type: string, pnid: string, mode = "upsert") => {
      const res = await h.inject({
        method: "POST",
        url: `/v1/imports?phone_number_id=${pnid}&mode=${mode}`,
        headers: { ...t.auth, "content-type": type },
        payload: text,
      });
      assert.equal(res.statusCode, 202, res.body);
      return waitForImport(h, res.json().data.id, t.auth);
    };
    /** What a contact is, without what differs between two copies of it. */
    const essence = (c: Json) => ({
      phone_number: c.phone_number,
      name: c.name,
      display_name: c.display_name,
      email: c.email,
      metadata: c.metadata,
      business_scoped_user_id: c.business_scoped_user_id,
      labels: c.labels.map((l: Json) => l.name).sort(),
    });

    test("CSV: header, quoting, every contact once, filters apply", async () => {
      const res = await exportOf("format=csv");
      assert.match(String(res.headers["content-type"]), /^text\/csv/);
      assert.match(String(res.headers["content-disposition"]), /attachment; filename="contacts-.*\.csv"/);
      const rows = parse(res.body, { columns: true }) as Record<string, string>[];
      assert.deepEqual(Object.keys(rows[0]!), [...CSV_COLUMNS]);
      assert.equal(rows.length, 35);
      assert.equal(new Set(rows.map((r) => r.id)).size, 35);
      // A leading + is neutralised against spreadsheet formulas (csv-safety.test.ts).
      const wa = rows.find((r) => r.phone_number === "'+628300000099")!;
      assert.deepEqual(
        [wa.name, wa.profile_name],
        ["", "Johnny WA"],
        "name is the name set; the profile name has its column",
      );
      const john = rows.find((r) => r.phone_number === "'+628300000001")!;
      assert.equal(john.name, 'Doe, "Johnny", the second');
      assert.deepEqual(JSON.parse(john.metadata!), {
        active: true,
        address: "Jl. Merdeka 1,\nJakarta",
        score: 7,
        tier: "gold",
      });
      assert.deepEqual(
        john.labels!.split("|").sort(),
        [labels[1].id, "VIP", "Ünïcode ✓"].sort(),
        "a name with | is written as its id",
      );
      const filtered = await exportOf(`format=csv&label=${labels[0].id}`);
      assert.equal((parse(filtered.body, { columns: true }) as unknown[]).length, 2);
      const bad = await h.inject({ method: "GET", url: "/v1/contacts/export?format=xml", headers: t.auth });
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json().error.param, "format");
      const unknown = await h.inject({
        method: "GET",
        url: "/v1/contacts/export?colour=red",
        headers: t.auth,
      });
      assert.equal(unknown.json().error.code, "invalid_field_value");
    });

    test("NDJSON: one contact representation per line", async () => {
      const res = await exportOf("format=ndjson");
      assert.match(String(res.headers["content-type"]), /^application\/x-ndjson/);
      const lines = res.body
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l));
      assert.equal(lines.length, 35);
      const page = await h.inject({ method: "GET", url: `/v1/contacts?limit=1`, headers: t.auth });
      assert.deepEqual(lines[0], page.json().data[0], "the same representation as the API, newest first");
    });

    for (const format of ["csv", "ndjson"] as const) {
      test(`round trip (${format}): export → import into the same account changes nothing; into a new one reproduces it`, async () => {
        const type = format === "csv" ? "text/csv" : "application/x-ndjson";
        const first = await exportOf(`format=${format}`);
        const same = await importText(first.body, type, source.phoneNumberId);
        assert.deepEqual(
          [same.created, same.updated, same.unchanged, same.failed_rows],
          [0, 0, 35, 0],
          JSON.stringify(same.errors),
        );
        const again = await exportOf(`format=${format}`);
        assert.equal(again.body, first.body, "nothing changed, not even updated_at");

        const target = await h.account(t.orgId);
        const copy = await importText(first.body, type, target.phoneNumberId, "create");
        assert.deepEqual([copy.created, copy.failed_rows], [35, 0], JSON.stringify(copy.errors));
        const original = (await exportOf("format=ndjson")).body
          .trimEnd()
          .split("\n")
          .map((l) => essence(JSON.parse(l)));
        const copied = (await exportOf("format=ndjson", target.phoneNumberId)).body
          .trimEnd()
          .split("\n")
          .map((l) => essence(JSON.parse(l)));
        const key = (c: Json) => c.phone_number ?? c.business_scoped_user_id;
        const sort = (list: Json[]) => [...list].sort((a, b) => (key(a) < key(b) ? -1 : 1));
        // The profile name comes from WhatsApp, not from files: the copy has none.
        const withoutProfile = original.map((c) =>
          c.phone_number === "+628300000099" ? { ...c, name: null } : c,
        );
        assert.deepEqual(sort(copied), sort(withoutProfile));
      });
    }

    test("editing the name column of a CSV export and importing it renames", async () => {
      const csv = (await exportOf("format=csv")).body;
      const edited = csv.replace(",Bulk 3,", ",Renamed Three,");
      assert.notEqual(edited, csv);
      const result = await importText(edited, "text/csv", source.phoneNumberId);
      assert.deepEqual([result.updated, result.unchanged, result.failed_rows], [1, 34, 0]);
      const listed = await h.inject({ method: "GET", url: "/v1/contacts?search=renamed", headers: t.auth });
      assert.equal(listed.json().data[0].name, "Renamed Three");
    });

    test("export is pulled batch by batch: one query per batch, only as fast as it is read", async () => {
      let queries = 0;
      const counting = h.store.db.withPlugin({
        transformQuery: (args) => args.node,
        transformResult: async (args) => {
          queries++;
          return args.result;
        },
      });
      const scope = { db: counting, organizationId: t.orgId };
      const generator = exportContacts(scope, contactFilters(t.orgId, source.id, {}), "ndjson", 10, {
        record: contactOut,
      });
      const first = await generator.next();
      assert.equal(first.value.split("\n").length - 1, 10);
      assert.equal(queries, 1, "nothing is read ahead of the consumer");
      let lines = 10;
      for await (const chunk of generator) lines += chunk.split("\n").length - 1;
      assert.equal(lines, 35);
      assert.equal(queries, 4);
    });
  });
}

for (const kind of storeKinds()) {
  describe(`export of many contacts, real server [${kind}]`, () => {
    test("the server keeps answering other requests while an export streams", async () => {
      const testStore = await createTestStore(kind, { migrated: true });
      await testStore.store.migrate();
      const { orgId, account, auth } = await seedOrganization(testStore.store.db, {
        name: "Big Export Co",
        phoneNumberId: "400000000000001",
        phoneNumber: "+628111444000",
      });
      const scope = { db: testStore.store.db, organizationId: orgId };
      const at = Date.now();
      for (let from = 0; from < 30_000; from += 5000) {
        const contacts = Array.from({ length: 5000 }, (_, i) => ({
          accountId: account.id,
          input: {
            phone_number: `+62832${String(from + i).padStart(7, "0")}`,
            display_name: `Many ${from + i}`,
          },
          at: at - from - i,
        }));
        await testStore.store.transaction((tx) =>
          bulkInsertContacts({ ...scope, db: tx }, contacts, "import"),
        );
      }
      // (at level info: the helper waits for the "Server listening" line)
      const server = await startServerProcess({ ...testStore.env, LOG_LEVEL: "info" });
      try {
        let streaming = true;
        let answeredWhileStreaming = 0;
        const probes = (async () => {
          while (streaming) {
            const res = await fetch(`${server.url}/v1/health`);
            await res.text();
            if (streaming) answeredWhileStreaming += 1;
          }
        })();
        const res = await fetch(`${server.url}/v1/contacts/export?format=ndjson`, { headers: auth });
        assert.equal(res.status, 200);
        let lines = 0;
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          for (const byte of chunk) if (byte === 10) lines += 1;
        }
        streaming = false;
        await probes;
        assert.equal(lines, 30_000);
        console.log(
          `# export [${kind}]: ${answeredWhileStreaming} health requests answered while 30,000 contacts streamed`,
        );
        // Before the fix, better-sqlite3's synchronous reads and a fast reader kept the
        // export from ever returning to the event loop: no other request got an answer.
        assert.ok(
          answeredWhileStreaming >= 5,
          `only ${answeredWhileStreaming} requests answered during the export`,
        );
      } finally {
        await server.kill();
        await testStore.drop();
      }
    });
  });
}
