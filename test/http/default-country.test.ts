import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { signMetaPayload } from "../../src/http/webhooks/meta-delivery.ts";
import { storeKinds } from "../helpers/env.ts";
import { ADMIN_TOKEN, createHarness, type Harness, type Json } from "../helpers/harness.ts";
import { waitForImport } from "../helpers/imports.ts";
import { messagesDelivery } from "../helpers/meta-delivery.ts";

const SECRET = "default-country-app-secret";
const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };
/** 0812-3456-7890 in Indonesia. */
const LOCAL = "0812-3456-7890";
const E164 = "+6281234567890";

let pnidCounter = 0;
const nextPnid = () => `${200000000000000 + process.pid * 100 + ++pnidCounter}`;

for (const kind of storeKinds()) {
  describe(`default_country: local-format phone numbers [${kind}]`, () => {
    let h: Harness;
    before(async () => {
      h = await createHarness(kind, { META_APP_SECRET: SECRET, META_VERIFY_TOKEN: "verify-token-123" });
    });
    after(async () => {
      await h.close();
    });

    /** An organisation with one account made through the admin API, with `default_country`. */
    async function setup(defaultCountry: string | null | undefined) {
      const tenant = await h.tenant();
      const pnid = nextPnid();
      const res = await h.inject({
        method: "POST",
        url: `/admin/v1/organizations/${tenant.orgId}/accounts`,
        headers: ADMIN,
        payload: {
          phone_number_id: pnid,
          phone_number: defaultCountry ? "0811-1222-333" : "+628111222333",
          ...(defaultCountry === undefined ? {} : { default_country: defaultCountry }),
        },
      });
      assert.equal(res.statusCode, 201, res.body);
      return { tenant, pnid, account: res.json().data as Json, auth: tenant.auth };
    }

    const get = (url: string, headers: Record<string, string>) => h.inject({ method: "GET", url, headers });
    const post = (url: string, headers: Record<string, string>, payload: unknown) =>
      h.inject({ method: "POST", url, headers, payload: payload as never });

    test("the admin API sets it (upper-cased), reads the account's own number in it, and GET /v1/accounts shows it", async () => {
      const { account, auth, pnid } = await setup("id");
      assert.equal(account.default_country, "ID");
      assert.equal(account.phone_number, "+628111222333", "the account's own number is read in its country");
      const listed = await get("/v1/accounts", auth);
      assert.equal(listed.statusCode, 200, listed.body);
      assert.deepEqual(
        listed.json().data.map((a: Json) => [a.phone_number_id, a.default_country]),
        [[pnid, "ID"]],
      );
      // Cleared, then set again; a bad code is refused in words.
      const cleared = await h.inject({
        method: "PATCH",
        url: `/admin/v1/accounts/${account.id}`,
        headers: ADMIN,
        payload: { default_country: null },
      });
      assert.equal(cleared.statusCode, 200, cleared.body);
      assert.equal(cleared.json().data.default_country, null);
      for (const bad of ["XX", "Indonesia", ""]) {
        const res = await h.inject({
          method: "PATCH",
          url: `/admin/v1/accounts/${account.id}`,
          headers: ADMIN,
          payload: { default_country: bad },
        });
        assert.equal(res.statusCode, 400, res.body);
        assert.equal(res.json().error.code, "invalid_field_value");
        assert.equal(res.json().error.param, "default_country");
      }
      const set = await h.inject({
        method: "PATCH",
        url: `/admin/v1/accounts/${account.id}`,
        headers: ADMIN,
        payload: { default_country: "gb" },
      });
      assert.equal(set.json().data.default_country, "GB");
      const unset = await setup(undefined);
      assert.equal(unset.account.default_country, null, "absent means none");
    });

    test("without a default_country a local number is 400 invalid_phone_number naming default_country", async () => {
      const { auth, pnid } = await setup(null);
      const res = await post(`/v1/${pnid}/contacts`, auth, { phone_number: LOCAL });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.json().error.code, "invalid_phone_number");
      assert.equal(res.json().error.param, "phone_number");
      assert.match(res.json().error.message, /default_country/);
    });

    test("native create (both paths), update, batch, filter and identifier lookups read local numbers", async () => {
      const { auth, pnid, account } = await setup("ID");
      const created = await post(`/v1/${pnid}/contacts`, auth, { phone_number: LOCAL, name: "Ani" });
      assert.equal(created.statusCode, 201, created.body);
      assert.equal(created.json().data.phone_number, E164);
      // The same person again, written internationally: the same identity.
      for (const same of [E164, "6281234567890", "0062 812 3456 7890"]) {
        const dup = await post(`/v1/${pnid}/contacts`, auth, { phone_number: same });
        assert.equal(dup.statusCode, 409, `${same}: ${dup.body}`);
        assert.equal(dup.json().error.existing_id, created.json().data.id);
      }
      // Org-level create naming the account by its own number written locally.
      const viaFrom = await post("/v1/contacts", auth, {
        from: "0811 1222 333",
        phone_number: "0813-0000-1111",
      });
      assert.equal(viaFrom.statusCode, 201, viaFrom.body);
      assert.equal(viaFrom.json().data.phone_number, "+6281300001111");
      // PATCH reads the new number in the contact's account's country.
      const patched = await h.inject({
        method: "PATCH",
        url: `/v1/contacts/${viaFrom.json().data.id}`,
        headers: auth,
        payload: { phone_number: "0813 0000 2222" },
      });
      assert.equal(patched.statusCode, 200, patched.body);
      assert.equal(patched.json().data.phone_number, "+6281300002222");
      // Batch: local, international, ambiguous and invalid items.
      const batch = await post(`/v1/${pnid}/contacts/batch`, auth, {
        mode: "upsert",
        contacts: [
          { phone_number: "0857-1111-2222", name: "Budi" },
          { phone_number: "+4915123456789", name: "Jens" },
          { phone_number: "819012345678", name: "ambiguous: a Japanese wa_id and an Indonesian mobile" },
          { phone_number: "0812", name: "too short" },
        ],
      });
      assert.equal(batch.statusCode, 200, batch.body);
      const results = batch.json().data;
      assert.deepEqual(
        results.map((r: Json) => r.status),
        ["created", "created", "error", "error"],
      );
      const phoneOf = async (id: string) => (await get(`/v1/contacts/${id}`, auth)).json().data.phone_number;
      assert.equal(await phoneOf(results[0].id), "+6285711112222");
      assert.equal(await phoneOf(results[1].id), "+4915123456789");
      assert.equal(results[2].error.code, "invalid_phone_number");
      assert.match(results[2].error.message, /ambiguous/);
      assert.equal(results[3].error.code, "invalid_phone_number");
      // List filters, per account and organisation-wide (the accounts agree on ID).
      for (const url of [`/v1/${pnid}/contacts?phone=`, "/v1/contacts?phone="]) {
        const res = await get(`${url}${encodeURIComponent("0857 1111 2222")}`, auth);
        assert.equal(res.statusCode, 200, res.body);
        assert.deepEqual(
          res.json().data.map((c: Json) => c.phone_number),
          ["+6285711112222"],
          url,
        );
      }
      // The export takes the same filter.
      const exported = await get(
        `/v1/contacts/export?format=ndjson&phone=${encodeURIComponent(LOCAL)}`,
        auth,
      );
      assert.equal(exported.statusCode, 200, exported.body);
      assert.equal(exported.body.trim().split("\n").length, 1);
      assert.equal(JSON.parse(exported.body.trim()).phone_number, E164);
      assert.equal(account.default_country, "ID");
    });

    test("organisation-wide filters use the accounts' one country; accounts that disagree leave local numbers unread", async () => {
      const { tenant, auth } = await setup("ID");
      const res = await get(`/v1/contacts?phone=${encodeURIComponent(LOCAL)}`, auth);
      assert.equal(res.statusCode, 200, res.body);
      // A second account of the organisation reading numbers in GB: no single country.
      const second = await h.inject({
        method: "POST",
        url: `/admin/v1/organizations/${tenant.orgId}/accounts`,
        headers: ADMIN,
        payload: { phone_number_id: nextPnid(), phone_number: "+447911123456", default_country: "GB" },
      });
      assert.equal(second.statusCode, 201, second.body);
      const refused = await get(`/v1/contacts?phone=${encodeURIComponent(LOCAL)}`, auth);
      assert.equal(refused.statusCode, 400, refused.body);
      assert.equal(refused.json().error.code, "invalid_phone_number");
      assert.equal(refused.json().error.param, "phone");
      // Naming the account still reads it.
      const named = await get(
        `/v1/${second.json().data.phone_number_id}/contacts?phone=${encodeURIComponent("07911 123457")}`,
        auth,
      );
      assert.equal(named.statusCode, 200, named.body);
      // International form works everywhere.
      const international = await get(`/v1/contacts?phone=${encodeURIComponent(E164)}`, auth);
      assert.equal(international.statusCode, 200, international.body);
    });

    test("platform (Kapso) and graph surfaces read a local wa_id, in writes, filters and lookups", async () => {
      const { tenant, pnid } = await setup("ID");
      const key = { "x-api-key": tenant.key };
      const created = await post("/platform/v1/whatsapp/contacts", key, {
        contact: { wa_id: LOCAL, profile_name: "Ani", phone_number_id: pnid },
      });
      assert.equal(created.statusCode, 201, created.body);
      assert.equal(created.json().data.wa_id, E164.slice(1));
      const id = created.json().data.id;
      const byLocal = await get(
        `/platform/v1/whatsapp/contacts/${encodeURIComponent(LOCAL)}?phone_number_id=${pnid}`,
        key,
      );
      assert.equal(byLocal.statusCode, 200, byLocal.body);
      assert.equal(byLocal.json().data.id, id);
      const orgWide = await get(`/platform/v1/whatsapp/contacts/${encodeURIComponent(LOCAL)}`, key);
      assert.equal(orgWide.statusCode, 200, orgWide.body);
      assert.equal(orgWide.json().data.id, id);
      const updated = await h.inject({
        method: "PATCH",
        url: `/platform/v1/whatsapp/contacts/${id}`,
        headers: key,
        payload: { contact: { wa_id: "0812 9999 0000" } },
      });
      assert.equal(updated.statusCode, 200, updated.body);
      assert.equal(updated.json().data.wa_id, "6281299990000");
      const graph = await get(
        `/meta/whatsapp/v24.0/${pnid}/contacts/${encodeURIComponent("0812-9999-0000")}`,
        key,
      );
      assert.equal(graph.statusCode, 200, graph.body);
      assert.equal(graph.json().id, id);
      const graphList = await get(
        `/meta/whatsapp/v24.0/${pnid}/contacts?wa_id=${encodeURIComponent("081299990000")}`,
        key,
      );
      assert.equal(graphList.statusCode, 200, graphList.body);
      assert.deepEqual(
        graphList.json().data.map((c: Json) => c.id),
        [id],
      );
    });

    test("CSV and NDJSON imports read local numbers in the account's country and report the others per row", async () => {
      const { auth, pnid } = await setup("ID");
      const upload = async (body: string, type: string) => {
        const res = await h.inject({
          method: "POST",
          url: `/v1/imports?phone_number_id=${pnid}`,
          headers: { ...auth, "content-type": type },
          payload: body,
        });
        assert.equal(res.statusCode, 202, res.body);
        return waitForImport(h, res.json().data.id, auth);
      };
      const csv = await upload(
        "phone_number,name\n0812-1000-0001,Local\n+6281210000002,International\n6281210000003,Digits\n819012345678,Ambiguous\n",
        "text/csv",
      );
      assert.equal(csv.status, "completed");
      assert.equal(csv.created, 3, JSON.stringify(csv));
      assert.equal(csv.failed_rows, 1);
      assert.deepEqual(
        csv.errors.map((e: Json) => [e.row, e.code]),
        [[4, "invalid_phone_number"]],
      );
      const nd = await upload(
        `${JSON.stringify({ phone_number: "0812 1000 0001", name: "Again" })}\n${JSON.stringify({ phone: "(0812) 1000-0004" })}\n`,
        "application/x-ndjson",
      );
      assert.equal(nd.status, "completed", JSON.stringify(nd));
      // The first row is the CSV's first contact written another way (create mode: it exists).
      assert.deepEqual([nd.created, nd.failed_rows, nd.errors[0]?.code], [1, 1, "contact_exists"]);
      const list = await get(`/v1/${pnid}/contacts?limit=100`, auth);
      assert.deepEqual(
        list
          .json()
          .data.map((c: Json) => c.phone_number)
          .sort(),
        ["+6281210000001", "+6281210000002", "+6281210000003", "+6281210000004"],
      );
    });

    test("Meta webhooks: a wa_id is international, and lands on the contact created from a local number", async () => {
      const { auth, pnid } = await setup("ID");
      const created = await post(`/v1/${pnid}/contacts`, auth, { phone_number: LOCAL, name: "Ani" });
      assert.equal(created.statusCode, 201, created.body);
      const deliver = async (waId: string, name: string) => {
        const body = messagesDelivery(pnid, { wa_id: waId, name });
        const res = await h.inject({
          method: "POST",
          url: "/webhooks/whatsapp",
          headers: {
            "content-type": "application/json",
            "x-hub-signature-256": signMetaPayload(SECRET, body),
          },
          payload: body,
        });
        assert.equal(res.statusCode, 200, res.body);
      };
      await deliver(E164.slice(1), "Ani from WhatsApp");
      // A Japanese person's wa_id, which as typed digits would be ambiguous in ID: Meta's is international.
      await deliver("819012345678", "Haruto");
      const list = await get(`/v1/${pnid}/contacts?limit=100`, auth);
      const byPhone = new Map(list.json().data.map((c: Json) => [c.phone_number, c]));
      assert.equal(list.json().data.length, 2, list.body);
      assert.equal((byPhone.get(E164) as Json).id, created.json().data.id, "the same contact");
      assert.equal((byPhone.get(E164) as Json).profile_name, "Ani from WhatsApp");
      assert.equal((byPhone.get("+819012345678") as Json).profile_name, "Haruto");
    });
  });
}
