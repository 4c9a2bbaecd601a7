import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { storeKinds } from "../../helpers/env.ts";
import { createHarness, type Harness, type Json, type Tenant } from "../../helpers/harness.ts";
import { waitForImport } from "../../helpers/imports.ts";

function assertCounts(imp: Json, expected: Record<string, number>) {
  const counts = {
    total_rows: imp.total_rows,
    processed_rows: imp.processed_rows,
    created: imp.created,
    updated: imp.updated,
    unchanged: imp.unchanged,
    failed_rows: imp.failed_rows,
  };
  assert.deepEqual(counts, expected, JSON.stringify(imp));
  assert.equal(imp.created + imp.updated + imp.unchanged + imp.failed_rows, imp.processed_rows);
}

for (const kind of storeKinds()) {
  describe(`imports [${kind}]`, () => {
    let h: Harness;
    let t: Tenant;
    let pnid: string;
    before(async () => {
      h = await createHarness(kind);
      t = await h.tenant("Import Co");
      pnid = (await h.account(t.orgId)).phoneNumberId;
    });
    after(async () => {
      await h.close();
    });

    const upload = (
      body: string | Buffer,
      type = "text/csv",
      query = `phone_number_id=${pnid}`,
      auth = t.auth,
    ) =>
      h.inject({
        method: "POST",
        url: `/v1/imports?${query}`,
        headers: { ...auth, "content-type": type },
        payload: body,
      });
    const run = async (body: string | Buffer, type = "text/csv", query?: string) => {
      const res = await upload(body, type, query);
      assert.equal(res.statusCode, 202, res.body);
      assert.match(res.json().data.id, /^imp_[0-9A-HJKMNP-TV-Z]{26}$/);
      assert.equal(res.json().data.status, "queued");
      return waitForImport(h, res.json().data.id, t.auth);
    };
    const contactByPhone = async (phone: string) => {
      const res = await h.inject({
        method: "GET",
        url: `/v1/contacts?phone=${encodeURIComponent(phone)}`,
        headers: t.auth,
      });
      return res.json().data[0] as Json;
    };

    test("a nasty CSV: BOM, CRLF, quoted commas and newlines, duplicates, bad phones and emails, unknown columns", async () => {
      const csv =
        "\ufeffphone_number,name,email,labels,Tier,notes\r\n" +
        '+628200000001,"Doe, John",john@example.com,vip|gold,gold,"line one\r\nline two"\r\n' +
        "+628200000002,Ani,not-an-email,,silver,\r\n" +
        "12345,Bad Phone,,,,\r\n" +
        '+62 8200-0000-01,"John ""JD"" Doe",,VIP,,\r\n' +
        "\r\n" +
        "+628200000003,Budi,budi@example.com,,bronze,x,extra\r\n" +
        ",No Phone,nobody@example.com,,,\r\n" +
        "+628200000004,Citra,CITRA@Example.com,new label,,\r\n";
      const imp = await run(csv);
      assert.equal(imp.status, "completed");
      assertCounts(imp, {
        total_rows: 7,
        processed_rows: 7,
        created: 2,
        updated: 1,
        unchanged: 0,
        failed_rows: 4,
      });
      assert.deepEqual(
        imp.errors.map((e: Json) => [e.row, e.code]),
        [
          [2, "invalid_email"],
          [3, "invalid_phone_number"],
          [5, "malformed_row"],
          [6, "missing_required_field"],
        ],
      );
      assert.equal(imp.errors[0].param, "email");
      assert.equal(imp.errors[2].line, 8, "line numbers count physical lines (the quoted newline too)");
      const john = await contactByPhone("+628200000001");
      assert.equal(john.name, 'John "JD" Doe', "the duplicate row merged like upsert");
      assert.equal(john.email, "john@example.com");
      assert.equal(john.source, "import");
      assert.deepEqual(john.metadata, { Tier: "gold", notes: "line one\r\nline two" });
      assert.deepEqual(
        john.labels.map((l: Json) => l.name),
        ["gold", "vip"],
        "labels by name, created when missing, matched case-insensitively",
      );
      const citra = await contactByPhone("+628200000004");
      assert.deepEqual(
        citra.labels.map((l: Json) => [l.name, l.color]),
        [["new label", "gray"]],
      );
      assert.equal(await contactByPhone("+628200000002"), undefined, "a row with an error writes nothing");
    });

    test("NDJSON: bad lines are row errors; null clears; labels by id or name", async () => {
      const label = (
        await h.inject({ method: "POST", url: "/v1/labels", headers: t.auth, payload: { name: "nd-label" } })
      ).json().data;
      const lines = [
        JSON.stringify({
          phone_number: "+628210000001",
          name: "Dewi",
          metadata: { a: 1 },
          labels: [label.id],
        }),
        "{not json",
        "",
        JSON.stringify([1, 2]),
        JSON.stringify({ phone_number: "+628210000002", email: "x@y" }),
        JSON.stringify({ phone_number: "+628210000001", email: "dewi@example.com", city: "Bandung" }),
        JSON.stringify({
          phone_number: "+628210000003",
          labels: ["Fresh"],
          metadata: { deep: { a: { b: { c: { d: { e: { f: 1 } } } } } } },
        }),
        JSON.stringify({ phone_number: 628210000004 }),
        JSON.stringify({ phone_number: "+628210000005", labels: ["lbl_01J0000000000000000000000A"] }),
      ];
      const imp = await run(
        `${lines.join("\n")}\n`,
        "application/x-ndjson",
        `phone_number_id=${pnid}&mode=upsert`,
      );
      assertCounts(imp, {
        total_rows: 8,
        processed_rows: 8,
        created: 1,
        updated: 1,
        unchanged: 0,
        failed_rows: 6,
      });
      assert.deepEqual(
        imp.errors.map((e: Json) => [e.row, e.line, e.code]),
        [
          [2, 2, "invalid_json"],
          [3, 4, "invalid_json"],
          [4, 5, "invalid_email"],
          [6, 7, "invalid_metadata"],
          [7, 8, "invalid_field_value"],
          [8, 9, "resource_not_found"],
        ],
      );
      const dewi = await contactByPhone("+628210000001");
      assert.deepEqual(dewi.metadata, { a: 1, city: "Bandung" });
      assert.equal(dewi.email, "dewi@example.com");
      const clear = await run(
        `${JSON.stringify({ phone_number: "+628210000001", email: null, metadata: null })}\n`,
        "application/x-ndjson",
        `phone_number_id=${pnid}&mode=upsert`,
      );
      assert.equal(clear.updated, 1);
      const cleared = await contactByPhone("+628210000001");
      assert.equal(cleared.email, null);
      assert.deepEqual(cleared.metadata, {});
    });

    test("an empty file, a header-only file and an unclosed quote", async () => {
      const empty = await run("");
      assertCounts(empty, {
        total_rows: 0,
        processed_rows: 0,
        created: 0,
        updated: 0,
        unchanged: 0,
        failed_rows: 0,
      });
      assert.equal(empty.status, "completed");
      const headerOnly = await run("phone_number,name\r\n");
      assert.equal(headerOnly.total_rows, 0);
      const unclosed = await run(
        'phone_number,name\n+628220000001,Eka\n+628220000002,"Fajar\n+628220000003,Gita\n',
      );
      assertCounts(unclosed, {
        total_rows: 2,
        processed_rows: 2,
        created: 1,
        updated: 0,
        unchanged: 0,
        failed_rows: 1,
      });
      assert.equal(unclosed.errors[0].code, "malformed_row");
      const emptyNd = await run("", "application/x-ndjson");
      assert.equal(emptyNd.status, "completed");
    });

    test("mode create: stored identities are contact_exists, duplicates inside the file merge", async () => {
      await run("phone_number,name\n+628230000001,Hadi\n");
      const imp = await run(
        "phone_number,name,email\n+628230000001,Hadi,\n+628230000002,Indah,\n+628230000002,,indah@example.com\n",
      );
      assertCounts(imp, {
        total_rows: 3,
        processed_rows: 3,
        created: 1,
        updated: 1,
        unchanged: 0,
        failed_rows: 1,
      });
      assert.equal(imp.errors[0].code, "contact_exists");
      const upsert = await run(
        "phone_number,name,email\n+628230000001,Hadi,\n+628230000002,Indah,indah@example.com\n",
        "text/csv",
        `phone_number_id=${pnid}&mode=upsert`,
      );
      assertCounts(upsert, {
        total_rows: 2,
        processed_rows: 2,
        created: 0,
        updated: 0,
        unchanged: 2,
        failed_rows: 0,
      });
    });

    test("request errors: media type, header problems, account, size, unknown import", async () => {
      const json = await h.inject({
        method: "POST",
        url: `/v1/imports?phone_number_id=${pnid}`,
        headers: t.auth,
        payload: { phone_number: "+1" },
      });
      assert.equal(json.statusCode, 415, json.body);
      assert.equal(json.json().error.code, "unsupported_media_type");
      assert.match(json.json().error.message, /text\/csv/);
      assert.match(json.json().error.message, /application\/x-ndjson/);
      // curl --data-binary's default form encoding, text/plain, octet-stream, none at all:
      // each 415 names the import's types (not the JSON routes' "send application/json").
      for (const type of [
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/octet-stream",
        undefined,
      ]) {
        const res = await h.inject({
          method: "POST",
          url: `/v1/imports?phone_number_id=${pnid}`,
          headers: type === undefined ? t.auth : { ...t.auth, "content-type": type },
          payload: type === undefined ? undefined : "phone_number\n+628240000001\n",
        });
        assert.equal(res.statusCode, 415, `${type}: ${res.body}`);
        const error = res.json().error;
        assert.equal(error.code, "unsupported_media_type", String(type));
        assert.equal(error.param, "Content-Type", String(type));
        assert.match(error.message, /text\/csv/, String(type));
        assert.match(error.message, /application\/x-ndjson/, String(type));
        assert.doesNotMatch(error.message, /send application\/json/, String(type));
      }
      const noPhone = await upload("name,email\nx,y@z.com\n");
      assert.equal(noPhone.statusCode, 400);
      assert.equal(noPhone.json().error.code, "missing_required_field");
      const twice = await upload("phone_number,Phone_Number\n1,2\n");
      assert.equal(twice.json().error.code, "invalid_field_value");
      const foreign = await upload("phone_number\n+628240000001\n", "text/csv", "phone_number_id=999999999");
      assert.equal(foreign.statusCode, 404);
      const badMode = await upload(
        "phone_number\n+628240000001\n",
        "text/csv",
        `phone_number_id=${pnid}&mode=merge`,
      );
      assert.equal(badMode.json().error.param, "mode");
      const declared = await h.inject({
        method: "POST",
        url: `/v1/imports?phone_number_id=${pnid}`,
        headers: { ...t.auth, "content-type": "text/csv", "content-length": String(101 * 1024 * 1024) },
        payload: "phone_number\n+628240000001\n",
      });
      assert.equal(declared.statusCode, 413, declared.body);
      assert.equal(declared.json().error.code, "payload_too_large");
      const missing = await h.inject({
        method: "GET",
        url: "/v1/imports/imp_01J0000000000000000000000A",
        headers: t.auth,
      });
      assert.equal(missing.statusCode, 404);
      const other = await h.tenant("Other Importer");
      const mine = await run("phone_number\n+628240000009\n");
      const peek = await h.inject({ method: "GET", url: `/v1/imports/${mine.id}`, headers: other.auth });
      assert.equal(peek.statusCode, 404, "another organisation's import is 404");
      const chunks = await h.store.db.selectFrom("import_chunks").select(["upload_id", "seq"]).execute();
      const imports = await h.store.db.selectFrom("imports").select(["id", "status"]).execute();
      assert.deepEqual(
        chunks,
        [],
        `refused and finished uploads leave no pieces behind ${JSON.stringify(imports)}`,
      );
      const contactsRoute = await h.inject({
        method: "POST",
        url: "/v1/contacts",
        headers: { ...t.auth, "content-type": "text/csv" },
        payload: "phone_number\n+1\n",
      });
      assert.equal(contactsRoute.statusCode, 415, "CSV is accepted only by imports");
    });

    test("the first 1,000 row errors are kept, counts stay exact", async () => {
      const rows = ["phone_number,email"];
      for (let i = 0; i < 1200; i++)
        rows.push(i % 2 === 0 ? `+6282500${String(i).padStart(5, "0")},` : "bad,x");
      const imp = await run(`${rows.join("\n")}\n`);
      assertCounts(imp, {
        total_rows: 1200,
        processed_rows: 1200,
        created: 600,
        updated: 0,
        unchanged: 0,
        failed_rows: 600,
      });
      assert.equal(imp.errors.length, 600);
      const more = ["phone_number"];
      for (let i = 0; i < 1100; i++) more.push("bad");
      const many = await run(`${more.join("\n")}\n`);
      assert.equal(many.failed_rows, 1100);
      assert.equal(many.errors.length, 1000);
      assert.deepEqual(
        many.errors.slice(0, 3).map((e: Json) => e.row),
        [1, 2, 3],
      );
      const list = await h.inject({ method: "GET", url: "/v1/imports?limit=2", headers: t.auth });
      assert.equal(list.statusCode, 200, list.body);
      assert.equal(list.json().data[0].id, many.id);
      assert.equal(list.json().has_more, true);
    });
  });
}
