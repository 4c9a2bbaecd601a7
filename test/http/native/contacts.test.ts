import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { assertError, assertStatus } from "../../helpers/assertions.ts";
import { storeKinds } from "../../helpers/env.ts";
import { createHarness, type Harness, type Json, type Tenant } from "../../helpers/harness.ts";

for (const kind of storeKinds()) {
  describe(`native contacts [${kind}]`, () => {
    let h: Harness;
    let t: Tenant;
    let pnid: string;
    let accountPhone: string;

    const post = (url: string, payload: unknown, tenant: Tenant = t) =>
      h.inject({ method: "POST", url, headers: tenant.auth, payload: payload as Json });
    const get = (url: string, tenant: Tenant = t) => h.inject({ method: "GET", url, headers: tenant.auth });
    const patch = (url: string, payload: unknown, tenant: Tenant = t) =>
      h.inject({ method: "PATCH", url, headers: tenant.auth, payload: payload as Json });
    const del = (url: string, tenant: Tenant = t) =>
      h.inject({ method: "DELETE", url, headers: tenant.auth });
    let seq = 0;
    const freshPhone = () => `+62812${String(5_000_000 + ++seq).padStart(7, "0")}`;

    before(async () => {
      h = await createHarness(kind);
      t = await h.tenant("Contacts Co");
      const account = await h.account(t.orgId);
      pnid = account.phoneNumberId;
      accountPhone = account.phoneNumber;
    });
    after(async () => {
      await h.close();
    });

    test("create normalises the phone and returns the full representation", async () => {
      const res = await post("/v1/contacts", {
        phone_number: "+62 (812) 3456-7890",
        name: "John Doe",
        email: "John@Example.com",
        metadata: { tier: "gold", visits: 3, vip: true },
      });
      assertStatus(res, 201);
      const c = res.json().data;
      assert.match(c.id, /^ctc_[0-9A-HJKMNP-TV-Z]{26}$/);
      assert.equal(c.object, "contact");
      assert.equal(c.phone_number, "+6281234567890");
      assert.equal(c.wa_id, "6281234567890");
      assert.equal(c.name, "John Doe");
      assert.equal(c.display_name, "John Doe");
      assert.equal(c.profile_name, null);
      assert.equal(c.email, "John@Example.com", "email is stored as given");
      assert.deepEqual(c.metadata, { tier: "gold", visits: 3, vip: true });
      assert.deepEqual(c.labels, []);
      assert.deepEqual(c.whatsapp_account, { phone_number: accountPhone, phone_number_id: pnid });
      assert.equal(c.source, "api");
      assert.equal(c.marketing_opt_out, false);
      assert.equal(c.business_scoped_user_id, null);
      assert.match(c.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal(c.created_at, c.updated_at);
      assert.equal(res.json().request_id, res.headers["x-request-id"]);
    });

    test("create on the account-scoped path; a BSUID-only contact has no phone", async () => {
      const res = await post(`/v1/${pnid}/contacts`, {
        business_scoped_user_id: "ID.1234567890",
        name: "Only BSUID",
      });
      assertStatus(res, 201);
      const c = res.json().data;
      assert.equal(c.phone_number, null);
      assert.equal(c.wa_id, null);
      assert.equal(c.business_scoped_user_id, "ID.1234567890");
      const dup = await post("/v1/contacts", { business_scoped_user_id: "ID.1234567890" });
      assertError(dup, 409, "contact_exists", "business_scoped_user_id");
      assert.equal(dup.json().error.existing_id, c.id);
    });

    test("create validation: every rule has its code and param", async () => {
      const cases: Array<[unknown, number, string, string | undefined]> = [
        [{}, 400, "missing_required_field", "phone_number"],
        [{ phone_number: "12" }, 400, "invalid_phone_number", "phone_number"],
        [{ phone_number: "+62 812 abc" }, 400, "invalid_phone_number", "phone_number"],
        [{ phone_number: "+999123456789" }, 400, "invalid_phone_number", "phone_number"],
        [{ phone_number: 6281234 }, 400, "invalid_field_value", "phone_number"],
        [{ phone_number: freshPhone(), email: "not-an-email" }, 400, "invalid_email", "email"],
        [{ phone_number: freshPhone(), email: 5 }, 400, "invalid_email", "email"],
        [{ phone_number: freshPhone(), name: "" }, 400, "invalid_field_value", "name"],
        [{ phone_number: freshPhone(), name: "x".repeat(257) }, 400, "invalid_field_value", "name"],
        [{ phone_number: freshPhone(), colour: "red" }, 400, "unknown_field", "colour"],
        [{ phone_number: freshPhone(), metadata: "x" }, 400, "invalid_metadata", "metadata"],
        [{ phone_number: freshPhone(), metadata: [1] }, 400, "invalid_metadata", "metadata"],
        [
          { phone_number: freshPhone(), metadata: { a: { b: { c: { d: { e: { f: { g: 1 } } } } } } } },
          400,
          "invalid_metadata",
          "metadata.a.b.c.d.e.f",
        ],
        [
          { phone_number: freshPhone(), metadata: { a: [[[[[[1]]]]]] } },
          400,
          "invalid_metadata",
          "metadata.a.0.0.0.0.0",
        ],
        [
          { phone_number: freshPhone(), metadata: { ["k".repeat(41)]: 1 } },
          400,
          "invalid_metadata",
          `metadata.${"k".repeat(41)}`,
        ],
        [
          { phone_number: freshPhone(), metadata: { a: "v".repeat(501) } },
          400,
          "invalid_metadata",
          "metadata.a",
        ],
        [
          {
            phone_number: freshPhone(),
            metadata: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i])),
          },
          400,
          "invalid_metadata",
          "metadata",
        ],
        [
          { phone_number: freshPhone(), metadata: { constructor: 1 } },
          400,
          "invalid_metadata",
          "metadata.constructor",
        ],
        [
          { phone_number: freshPhone(), metadata: { prototype: "x" } },
          400,
          "invalid_metadata",
          "metadata.prototype",
        ],
        [
          { phone_number: freshPhone(), labels: ["lbl_01J0000000000000000000000A"] },
          404,
          "resource_not_found",
          "labels",
        ],
        [{ phone_number: freshPhone(), labels: ["nope"] }, 400, "invalid_field_value", "labels.0"],
      ];
      for (const [payload, status, code, param] of cases) {
        assertError(await post("/v1/contacts", payload), status, code, param);
      }
      const proto = await h.inject({
        method: "POST",
        url: "/v1/contacts",
        headers: { ...t.auth, "content-type": "application/json" },
        payload: `{"phone_number":"${freshPhone()}","metadata":{"__proto__":{"polluted":true}}}`,
      });
      assertError(proto, 400, "invalid_metadata", "metadata.__proto__");
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
      const total = await get("/v1/contacts?limit=100");
      for (const c of total.json().data) assert.notEqual(c.metadata?.polluted, true);
    });

    test("org-level create picks the account: from, the only one, or asks", async () => {
      const solo = await h.tenant("Solo");
      assertError(
        await post("/v1/contacts", { phone_number: freshPhone() }, solo),
        422,
        "no_connected_account",
        "from",
      );
      const first = await h.account(solo.orgId);
      const one = await post("/v1/contacts", { phone_number: freshPhone() }, solo);
      assertStatus(one, 201);
      assert.equal(one.json().data.whatsapp_account.phone_number_id, first.phoneNumberId);
      const second = await h.account(solo.orgId);
      assertError(
        await post("/v1/contacts", { phone_number: freshPhone() }, solo),
        422,
        "account_required",
        "from",
      );
      const byId = await post(
        "/v1/contacts",
        { phone_number: freshPhone(), from: second.phoneNumberId },
        solo,
      );
      assert.equal(byId.json().data.whatsapp_account.phone_number_id, second.phoneNumberId);
      const byPhone = await post(
        "/v1/contacts",
        { phone_number: freshPhone(), from: second.phoneNumber },
        solo,
      );
      assert.equal(byPhone.json().data.whatsapp_account.phone_number_id, second.phoneNumberId);
      assertError(
        await post("/v1/contacts", { phone_number: freshPhone(), from: pnid }, solo),
        404,
        "resource_not_found",
        "from",
      );
      assertError(
        await post("/v1/contacts", { phone_number: freshPhone(), from: "+15550001111" }, solo),
        404,
        "resource_not_found",
        "from",
      );
    });

    test("identity is unique per account: 409 with existing_id; the same phone on another account is another contact", async () => {
      const phone = freshPhone();
      const created = await post(`/v1/${pnid}/contacts`, { phone_number: phone });
      assertStatus(created, 201);
      const dup = await post(`/v1/${pnid}/contacts`, { phone_number: phone.replace("+62", "+62 ") });
      assertError(dup, 409, "contact_exists", "phone_number");
      assert.equal(dup.json().error.existing_id, created.json().data.id);
      const other = await h.account(t.orgId);
      const elsewhere = await post(`/v1/${other.phoneNumberId}/contacts`, { phone_number: phone });
      assertStatus(elsewhere, 201);
      assert.notEqual(elsewhere.json().data.id, created.json().data.id);
    });

    test("concurrent creates of one phone: exactly one 201, the rest 409, one row", async () => {
      const phone = freshPhone();
      const results = await Promise.all(
        Array.from({ length: 20 }, () => post(`/v1/${pnid}/contacts`, { phone_number: phone })),
      );
      const created = results.filter((r) => r.statusCode === 201);
      assert.equal(created.length, 1, results.map((r) => r.statusCode).join(","));
      for (const r of results.filter((x) => x.statusCode !== 201)) {
        assertError(r, 409, "contact_exists");
        assert.equal(r.json().error.existing_id, created[0]!.json().data.id);
      }
      const rows = await h.store.db
        .selectFrom("contacts")
        .select("id")
        .where("phone_number", "=", phone)
        .execute();
      assert.equal(rows.length, 1);
    });

    test("concurrent PATCHes moving several contacts onto one phone: one wins, the rest 409 with its id", async () => {
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        ids.push((await post(`/v1/${pnid}/contacts`, { phone_number: freshPhone() })).json().data.id);
      }
      const target = freshPhone();
      const results = await Promise.all(
        ids.map((id) => patch(`/v1/contacts/${id}`, { phone_number: target })),
      );
      const won = results.filter((r) => r.statusCode === 200);
      assert.equal(won.length, 1, results.map((r) => r.body).join("\n"));
      for (const r of results.filter((x) => x.statusCode !== 200)) {
        assertError(r, 409, "contact_exists", "phone_number");
        assert.equal(r.json().error.existing_id, won[0]!.json().data.id);
      }
    });

    test("fetch in both path styles; wrong account, foreign org, malformed ids", async () => {
      const c = (await post("/v1/contacts", { phone_number: freshPhone(), from: pnid })).json().data;
      assertStatus(await get(`/v1/contacts/${c.id}`), 200);
      const scoped = await get(`/v1/${pnid}/contacts/${c.id}`);
      assertStatus(scoped, 200);
      assert.deepEqual(scoped.json().data, (await get(`/v1/contacts/${c.id}`)).json().data);
      const other = await h.account(t.orgId);
      assertError(await get(`/v1/${other.phoneNumberId}/contacts/${c.id}`), 404, "resource_not_found");
      assertError(await get("/v1/contacts/ctc_01J0000000000000000000000A"), 404, "resource_not_found", "id");
      assertError(await get("/v1/contacts/ctc_123"), 400, "invalid_field_value", "id");
      assertError(await get("/v1/contacts/lbl_01J0000000000000000000000A"), 400, "invalid_field_value", "id");
      assertError(await get("/v1/999999999/contacts"), 404, "resource_not_found", "phone_number_id");
      assertError(await get("/v1/12ab/contacts"), 400, "invalid_field_value", "phone_number_id");
      const stranger = await h.tenant("Stranger");
      const strangerAccount = await h.account(stranger.orgId);
      assertError(await get(`/v1/contacts/${c.id}`, stranger), 404, "resource_not_found");
      assertError(await get(`/v1/${pnid}/contacts`, stranger), 404, "resource_not_found");
      assertError(await patch(`/v1/contacts/${c.id}`, { name: "x" }, stranger), 404, "resource_not_found");
      assertError(await del(`/v1/contacts/${c.id}`, stranger), 404, "resource_not_found");
      assertError(
        await post(`/v1/${pnid}/contacts`, { phone_number: freshPhone() }, stranger),
        404,
        "resource_not_found",
      );
      const list = await get("/v1/contacts?limit=100", stranger);
      assert.deepEqual(list.json().data, []);
      assertStatus(await get(`/v1/${strangerAccount.phoneNumberId}/contacts`, stranger), 200);
      assertError(await get(`/v1/${strangerAccount.phoneNumberId}/contacts`), 404, "resource_not_found");
    });

    test("update: name, email, phone, metadata merge and clear; a no-op leaves updated_at", async () => {
      const c = (
        await post("/v1/contacts", {
          phone_number: freshPhone(),
          from: pnid,
          metadata: { a: 1, b: "x" },
          email: "a@b.co",
        })
      ).json().data;
      await new Promise((r) => setTimeout(r, 5));
      const merged = await patch(`/v1/contacts/${c.id}`, { metadata: { a: null, c: true } });
      assertStatus(merged, 200);
      assert.deepEqual(merged.json().data.metadata, { b: "x", c: true });
      assert.ok(merged.json().data.updated_at > c.updated_at);
      const noop = await patch(`/v1/${pnid}/contacts/${c.id}`, { metadata: { b: "x" }, email: "a@b.co" });
      assertStatus(noop, 200);
      assert.equal(noop.json().data.updated_at, merged.json().data.updated_at);
      const named = await patch(`/v1/contacts/${c.id}`, {
        name: "Renamed",
        email: null,
        phone_number: "+62 811 7777 0001",
      });
      assert.equal(named.json().data.name, "Renamed");
      assert.equal(named.json().data.display_name, "Renamed");
      assert.equal(named.json().data.email, null);
      assert.equal(named.json().data.phone_number, "+6281177770001");
      const cleared = await patch(`/v1/contacts/${c.id}`, { metadata: null });
      assert.deepEqual(cleared.json().data.metadata, {});
      assertError(await patch(`/v1/contacts/${c.id}`, {}), 400, "missing_required_field");
      assertError(await patch(`/v1/contacts/${c.id}`, { email: "bad" }), 400, "invalid_email", "email");
      assertError(
        await patch(`/v1/contacts/${c.id}`, { phone_number: "1" }),
        400,
        "invalid_phone_number",
        "phone_number",
      );
      assertError(
        await patch(`/v1/contacts/${c.id}`, { business_scoped_user_id: "x" }),
        400,
        "unknown_field",
      );
      assertError(
        await patch(`/v1/contacts/${c.id}`, { metadata: { __x: { y: "z".repeat(501) } } }),
        400,
        "invalid_metadata",
      );
      const full = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, i]));
      assertStatus(await patch(`/v1/contacts/${c.id}`, { metadata: full }), 200);
      assertError(
        await patch(`/v1/contacts/${c.id}`, { metadata: { one_more: 1 } }),
        400,
        "invalid_metadata",
        "metadata",
      );
      const taken = (await post("/v1/contacts", { phone_number: freshPhone(), from: pnid })).json().data;
      const clash = await patch(`/v1/contacts/${c.id}`, { phone_number: taken.phone_number });
      assertError(clash, 409, "contact_exists", "phone_number");
      assert.equal(clash.json().error.existing_id, taken.id);
      const after = (await get(`/v1/contacts/${c.id}`)).json().data;
      assert.equal(after.phone_number, "+6281177770001", "a rejected PATCH writes nothing");
    });

    test("name falls back to the WhatsApp profile name", async () => {
      const c = (await post("/v1/contacts", { phone_number: freshPhone(), from: pnid })).json().data;
      await h.store.db
        .updateTable("contacts")
        .set({ profile_name: "Johnny" })
        .where("id", "=", c.id)
        .execute();
      const res = (await get(`/v1/contacts/${c.id}`)).json().data;
      assert.equal(res.name, "Johnny");
      assert.equal(res.display_name, null);
      const named = (await patch(`/v1/contacts/${c.id}`, { name: "John" })).json().data;
      assert.equal(named.name, "John");
      assert.equal(named.profile_name, "Johnny");
    });

    test("delete: hard, then 404", async () => {
      const c = (await post("/v1/contacts", { phone_number: freshPhone(), from: pnid })).json().data;
      const res = await del(`/v1/${pnid}/contacts/${c.id}`);
      assertStatus(res, 200);
      assert.deepEqual(res.json().data, { id: c.id, object: "contact", deleted: true });
      assertError(await del(`/v1/contacts/${c.id}`), 404, "resource_not_found");
      assertError(await get(`/v1/contacts/${c.id}`), 404, "resource_not_found");
    });
  });

  describe(`native contact lists [${kind}]`, () => {
    let h: Harness;
    let t: Tenant;
    let pnid: string;
    let otherPnid: string;
    const ids: string[] = [];
    const get = (url: string) => h.inject({ method: "GET", url, headers: t.auth });

    before(async () => {
      h = await createHarness(kind);
      t = await h.tenant("Lists Co");
      pnid = (await h.account(t.orgId)).phoneNumberId;
      otherPnid = (await h.account(t.orgId)).phoneNumberId;
      const people = [
        ["Alice Smith", "alice@example.com"],
        ["Bob Stone", "bob@corp.io"],
        ["Carol Alison", null],
        ["Dave 100%_Real", "dave@x.org"],
      ] as const;
      for (const [i, [name, email]] of people.entries()) {
        const res = await h.inject({
          method: "POST",
          url: `/v1/${i % 2 === 0 ? pnid : otherPnid}/contacts`,
          headers: t.auth,
          payload: { phone_number: `+4479460${String(1000 + i)}`, name, ...(email ? { email } : {}) },
        });
        assertStatus(res, 201);
        ids.push(res.json().data.id);
        await new Promise((r) => setTimeout(r, 3));
      }
    });
    after(async () => {
      await h.close();
    });

    test("order is created_at desc, id desc; account path sees only its account", async () => {
      const all = await get("/v1/contacts");
      assert.deepEqual(
        all.json().data.map((c: { id: string }) => c.id),
        [...ids].reverse(),
      );
      assert.equal(all.json().has_more, false);
      assert.equal(all.json().next_cursor, null);
      const scoped = await get(`/v1/${pnid}/contacts`);
      assert.deepEqual(
        scoped.json().data.map((c: { id: string }) => c.id),
        [ids[2], ids[0]],
      );
    });

    test("filters: phone (formatted), search (names, email, digits, case, wildcards), dates", async () => {
      const byPhone = await get(`/v1/contacts?phone=${encodeURIComponent("+44 7946-01001")}`);
      assert.deepEqual(
        byPhone.json().data.map((c: { id: string }) => c.id),
        [ids[1]],
      );
      assertError(await get("/v1/contacts?phone=123"), 400, "invalid_phone_number", "phone");
      const names = async (q: string) =>
        (await get(`/v1/contacts?search=${encodeURIComponent(q)}`))
          .json()
          .data.map((c: { name: string }) => c.name)
          .sort();
      assert.deepEqual(await names("ALI"), ["Alice Smith", "Carol Alison"]);
      assert.deepEqual(await names("corp"), ["Bob Stone"]);
      assert.deepEqual(await names("o"), ["Alice Smith", "Bob Stone", "Carol Alison", "Dave 100%_Real"]);
      assert.deepEqual(await names("st"), ["Bob Stone"]);
      assert.deepEqual(await names("%_"), ["Dave 100%_Real"]);
      assert.deepEqual(await names("_"), ["Dave 100%_Real"]);
      assert.deepEqual(await names("%"), ["Dave 100%_Real"]);
      assert.deepEqual(await names("4601002"), ["Carol Alison"]);
      assert.deepEqual(await names("+44 7946 01003"), ["Dave 100%_Real"]);
      assert.deepEqual(await names("' OR 1=1 --"), []);
      assertError(await get(`/v1/contacts?search=${"x".repeat(201)}`), 400, "invalid_field_value", "search");
      assertError(await get("/v1/contacts?search="), 400, "invalid_field_value", "search");
      const second = (await get(`/v1/contacts/${ids[1]}`)).json().data.created_at;
      const after = await get(`/v1/contacts?created_after=${encodeURIComponent(second)}`);
      assert.deepEqual(
        after.json().data.map((c: { id: string }) => c.id),
        [ids[3], ids[2]],
      );
      const beforeRes = await get(`/v1/contacts?created_before=${encodeURIComponent(second)}`);
      assert.deepEqual(
        beforeRes.json().data.map((c: { id: string }) => c.id),
        [ids[0]],
      );
      await h.inject({
        method: "PATCH",
        url: `/v1/contacts/${ids[0]}`,
        headers: t.auth,
        payload: { name: "Alice Updated" },
      });
      const updated = await get(
        `/v1/contacts?updated_after=${encodeURIComponent(new Date(Date.now() - 1000).toISOString())}`,
      );
      assert.ok(updated.json().data.some((c: { id: string }) => c.id === ids[0]));
      assertError(
        await get("/v1/contacts?created_after=yesterday"),
        400,
        "invalid_field_value",
        "created_after",
      );
      assertError(await get("/v1/contacts?label=lbl_x"), 400, "invalid_field_value", "label");
      assertError(await get("/v1/contacts?sort=name"), 400, "invalid_field_value", "sort");
    });

    test("malformed ids are explained in words, not as the pattern they fail", async () => {
      const cases: [Awaited<ReturnType<typeof get>>, string, RegExp][] = [
        [await get("/v1/contacts/ctc_123"), "id", /^id must be a contact id: "ctc_" .* such as ctc_01J/],
        [
          await get("/v1/123/contacts"),
          "phone_number_id",
          /^phone_number_id must be a Meta phone_number_id: 6 to 20 digits/,
        ],
        [await get("/v1/labels/vip"), "id", /^id must be a label id: "lbl_" .* such as lbl_01J/],
        [
          await h.inject({
            method: "POST",
            url: "/v1/contacts",
            headers: t.auth,
            payload: { from: pnid, phone_number: "+628122230001", labels: ["vip"] },
          }),
          "labels.0",
          /^labels\.0 must be a label id/,
        ],
      ];
      for (const [res, param, words] of cases) {
        assertError(res, 400, "invalid_field_value", param);
        const message = String(res.json().error.message);
        assert.match(message, words);
        assert.doesNotMatch(message, /pattern|\^|\$|\[0-9/, message);
      }
    });

    test("limit: digits only, 1–100", async () => {
      for (const bad of ["0", "101", "abc", "1.5", "-1", "1e2", "", " 5"]) {
        assertError(
          await get(`/v1/contacts?limit=${encodeURIComponent(bad)}`),
          400,
          "invalid_limit",
          "limit",
        );
      }
      assert.equal((await get("/v1/contacts?limit=100")).statusCode, 200);
    });

    test("cursors: walk, then tampered, foreign-filter and foreign-path cursors are rejected", async () => {
      const seen: string[] = [];
      let url = "/v1/contacts?limit=1";
      for (;;) {
        const page = (await get(url)).json();
        seen.push(...page.data.map((c: { id: string }) => c.id));
        assert.equal(page.has_more, page.next_cursor !== null);
        if (!page.has_more) break;
        url = `/v1/contacts?limit=1&cursor=${encodeURIComponent(page.next_cursor)}`;
      }
      assert.deepEqual(seen, [...ids].reverse());
      const cursor = (await get("/v1/contacts?limit=1")).json().next_cursor as string;
      const [payload, sig] = cursor.split(".");
      const forged = Buffer.from(
        JSON.stringify({ ...JSON.parse(Buffer.from(payload!, "base64url").toString()), t: 0 }),
      ).toString("base64url");
      for (const bad of [
        `${forged}.${sig}`,
        `${payload}.AAAA${sig!.slice(4)}`,
        "garbage",
        "",
        "a.b",
        `${cursor}x`,
      ]) {
        assertError(
          await get(`/v1/contacts?limit=1&cursor=${encodeURIComponent(bad)}`),
          400,
          "invalid_cursor",
          "cursor",
        );
      }
      assertError(
        await get(`/v1/contacts?limit=1&search=a&cursor=${encodeURIComponent(cursor)}`),
        400,
        "invalid_cursor",
      );
      assertError(
        await get(`/v1/${pnid}/contacts?limit=1&cursor=${encodeURIComponent(cursor)}`),
        400,
        "invalid_cursor",
      );
      assertStatus(await get(`/v1/contacts?limit=2&cursor=${encodeURIComponent(cursor)}`), 200);
    });
  });
}
