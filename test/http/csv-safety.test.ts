import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parse } from "csv-parse/sync";
import { storeKinds } from "../helpers/env.ts";
import { createHarness, type Harness, type Json, type Tenant } from "../helpers/harness.ts";
import { waitForImport } from "../helpers/imports.ts";

for (const kind of storeKinds()) {
  describe(`CSV export against formula injection, and import encodings [${kind}]`, () => {
    let h: Harness;
    let t: Tenant;
    let account: { phoneNumberId: string };
    before(async () => {
      h = await createHarness(kind);
      t = await h.tenant();
      account = await h.account(t.orgId);
    });
    after(async () => h?.close());

    const NASTY = [
      '=HYPERLINK("http://evil.example","click")',
      "+cmd|' /C calc'!A0",
      "-2+3",
      "@SUM(A1:A2)",
      "'=already quoted",
      "''@twice",
      "'plain quote",
      "plain",
    ];

    const importCsv = async (file: string | Buffer, query = "", contentType = "text/csv") => {
      const res = await h.inject({
        method: "POST",
        url: `/v1/imports?phone_number_id=${account.phoneNumberId}&mode=upsert${query}`,
        headers: { ...t.auth, "content-type": contentType },
        payload: file,
      });
      assert.equal(res.statusCode, 202, res.body);
      return waitForImport(h, res.json().data.id, t.auth);
    };

    test("formula cells are prefixed with ' in CSV, exact in NDJSON and with raw=true; an export imports back unchanged", async () => {
      const contacts = NASTY.map((name, i) => ({
        phone_number: `+62813100000${i}`,
        name,
        metadata: { note: name },
      }));
      const batch = await h.inject({
        method: "POST",
        url: `/v1/${account.phoneNumberId}/contacts/batch`,
        headers: t.auth,
        payload: { mode: "create", contacts },
      });
      assert.equal(batch.json().summary.created, NASTY.length, batch.body);
      // A tab at the start of a label name, too.
      const label = await h.inject({
        method: "POST",
        url: "/v1/labels",
        headers: t.auth,
        payload: { name: "=1+1" },
      });
      const first = batch.json().data[0].id;
      await h.inject({
        method: "POST",
        url: `/v1/contacts/${first}/labels`,
        headers: t.auth,
        payload: { label_id: label.json().data.id },
      });

      const csv = await h.inject({ method: "GET", url: "/v1/contacts/export?format=csv", headers: t.auth });
      const rows: Json[] = parse(csv.body, { columns: true });
      const byName = new Map(rows.map((r) => [r.id, r]));
      for (const [i, name] of NASTY.entries()) {
        const row = byName.get(batch.json().data[i].id);
        const expected = /^'*[=+\-@\t\r]/.test(name) ? `'${name}` : name;
        assert.equal(row.name, expected, `name ${name}`);
        assert.equal(row.phone_number, `'+62813100000${i}`, "a leading + is neutralised too");
        assert.ok(!/^[=+\-@]/.test(row.name));
      }
      assert.equal(byName.get(first).labels, "'=1+1");
      for (const row of rows) {
        for (const cell of Object.values(row) as string[]) assert.ok(!/^[=+\-@\t\r]/.test(cell), cell);
      }

      const raw = await h.inject({
        method: "GET",
        url: "/v1/contacts/export?format=csv&raw=true",
        headers: t.auth,
      });
      const rawRows: Json[] = parse(raw.body, { columns: true });
      assert.deepEqual(
        rawRows.map((r) => r.name).sort(),
        [...NASTY].sort(),
        "raw=true exports the stored values",
      );
      const ndjson = await h.inject({
        method: "GET",
        url: "/v1/contacts/export?format=ndjson",
        headers: t.auth,
      });
      const names = ndjson.body
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line).name);
      assert.deepEqual(names.sort(), [...NASTY].sort(), "NDJSON is exact");

      // The neutralised export imports back without a change.
      const done = await importCsv(csv.body);
      assert.equal(done.status, "completed");
      assert.equal(done.unchanged, NASTY.length, JSON.stringify(done));
      assert.equal(done.updated, 0);
    });

    test("a Latin-1 CSV: rows that are not UTF-8 are row errors naming the encoding; encoding=latin1 reads them", async () => {
      const latin1 = Buffer.from(
        "phone_number,name\n+6281320000001,José Müller\n+6281320000002,Plain Ascii\n",
        "latin1",
      );
      const asUtf8 = await importCsv(latin1);
      assert.equal(asUtf8.status, "completed");
      assert.equal(asUtf8.created, 1);
      assert.equal(asUtf8.failed_rows, 1);
      assert.equal(asUtf8.errors[0].row, 1);
      assert.equal(asUtf8.errors[0].code, "invalid_encoding");
      assert.match(asUtf8.errors[0].message, /UTF-8.*Latin-1.*encoding=latin1/);
      const none = await h.inject({
        method: "GET",
        url: "/v1/contacts?phone=%2B6281320000001",
        headers: t.auth,
      });
      assert.equal(none.json().data.length, 0, "nothing stored with replacement characters");

      const read = await importCsv(latin1, "&encoding=latin1");
      assert.equal(read.created, 1, JSON.stringify(read));
      assert.equal(read.unchanged, 1);
      const jose = await h.inject({
        method: "GET",
        url: "/v1/contacts?phone=%2B6281320000001",
        headers: t.auth,
      });
      assert.equal(jose.json().data[0].name, "José Müller");

      const byCharset = await importCsv(
        Buffer.from("phone_number,name\n+6281320000003,Zoë\n", "latin1"),
        "",
        "text/csv; charset=ISO-8859-1",
      );
      assert.equal(byCharset.created, 1, JSON.stringify(byCharset));
      const zoe = await h.inject({
        method: "GET",
        url: "/v1/contacts?phone=%2B6281320000003",
        headers: t.auth,
      });
      assert.equal(zoe.json().data[0].name, "Zoë");

      const unknown = await h.inject({
        method: "POST",
        url: `/v1/imports?phone_number_id=${account.phoneNumberId}&encoding=ebcdic`,
        headers: { ...t.auth, "content-type": "text/csv" },
        payload: "phone_number\n+6281320000004\n",
      });
      assert.equal(unknown.statusCode, 400);
      assert.equal(unknown.json().error.param, "encoding");
    });

    test("NDJSON lines that are not UTF-8 are row errors", async () => {
      const file = Buffer.concat([
        Buffer.from('{"phone_number":"+6281330000001","name":"Ren'),
        Buffer.from([0xe9]),
        Buffer.from('e"}\n{"phone_number":"+6281330000002","name":"Ok"}\n'),
      ]);
      const done = await importCsv(file, "", "application/x-ndjson");
      assert.equal(done.created, 1);
      assert.equal(done.errors[0].code, "invalid_encoding");
    });
  });
}
