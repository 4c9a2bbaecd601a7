import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { storeKinds } from "../helpers/env.ts";
import { createHarness, type Harness, type Json, type Tenant } from "../helpers/harness.ts";
import { waitForImport } from "../helpers/imports.ts";

const ADDRESS = {
  address: { city: "Jakarta", lines: ["Jl. Merdeka 1", null], geo: { lat: -6.2, ok: true } },
};

/** A document with n objects nested inside it: depth(0) = { k0: 1 }, depth(1) = { k1: { k0: 1 } }. */
function depth(n: number): Json {
  let value: Json = 1;
  for (let i = 0; i <= n; i++) value = { [`k${i}`]: value };
  return value;
}

for (const kind of storeKinds()) {
  describe(`nested metadata on every surface [${kind}]`, () => {
    let h: Harness;
    let t: Tenant;
    let pnid: string;
    before(async () => {
      h = await createHarness(kind);
      t = await h.tenant();
      pnid = (await h.account(t.orgId)).phoneNumberId;
    });
    after(async () => h?.close());

    test("a Kapso client's { metadata: { address: { city } } } is stored and read back on every surface", async () => {
      const created = await h.inject({
        method: "POST",
        url: "/platform/v1/whatsapp/contacts",
        headers: { "x-api-key": t.key },
        payload: { contact: { wa_id: "15551230001", metadata: ADDRESS } },
      });
      assert.equal(created.statusCode, 201, created.body);
      assert.deepEqual(created.json().data.metadata, ADDRESS);
      const id = created.json().data.id;
      const native = await h.inject({
        method: "GET",
        url: "/v1/contacts?phone=%2B15551230001",
        headers: t.auth,
      });
      assert.deepEqual(native.json().data[0].metadata, ADDRESS);
      const graph = await h.inject({
        method: "GET",
        url: `/meta/whatsapp/v24.0/${pnid}/contacts/15551230001`,
        headers: { "x-api-key": t.key },
      });
      assert.deepEqual(graph.json().metadata, ADDRESS);
      const platform = await h.inject({
        method: "GET",
        url: `/platform/v1/whatsapp/contacts/${id}`,
        headers: { "x-api-key": t.key },
      });
      assert.deepEqual(platform.json().data.metadata, ADDRESS);
    });

    test("native create, batch, graph PATCH and NDJSON import accept nested values", async () => {
      const create = await h.inject({
        method: "POST",
        url: `/v1/${pnid}/contacts`,
        headers: t.auth,
        payload: { phone_number: "+15551230002", metadata: { tags: ["vip", "lead"], deep: depth(4) } },
      });
      assert.equal(create.statusCode, 201, create.body);
      assert.deepEqual(create.json().data.metadata.tags, ["vip", "lead"]);
      const batch = await h.inject({
        method: "POST",
        url: `/v1/${pnid}/contacts/batch`,
        headers: t.auth,
        payload: { mode: "upsert", contacts: [{ phone_number: "+15551230003", metadata: ADDRESS }] },
      });
      assert.equal(batch.json().data[0].status, "created", batch.body);
      const patch = await h.inject({
        method: "PATCH",
        url: `/meta/whatsapp/v24.0/${pnid}/contacts/15551230003`,
        headers: { "x-api-key": t.key },
        payload: { metadata: { prefs: { lang: "id" } } },
      });
      assert.equal(patch.statusCode, 200, patch.body);
      const imp = await h.inject({
        method: "POST",
        url: `/v1/imports?phone_number_id=${pnid}&mode=upsert`,
        headers: { ...t.auth, "content-type": "application/x-ndjson" },
        payload: `${JSON.stringify({ phone_number: "+15551230004", metadata: ADDRESS })}\n`,
      });
      const done = await waitForImport(h, imp.json().data.id, t.auth);
      assert.equal(done.created, 1, JSON.stringify(done));
      const list = await h.inject({ method: "GET", url: "/v1/contacts?search=1555123000", headers: t.auth });
      const byPhone = new Map(list.json().data.map((c: Json) => [c.phone_number, c.metadata]));
      assert.deepEqual(byPhone.get("+15551230003"), { ...ADDRESS, prefs: { lang: "id" } });
      assert.deepEqual(byPhone.get("+15551230004"), ADDRESS);
    });

    test("merge is top-level: a nested value replaces the stored one whole; null removes a top-level key", async () => {
      const c = await h.inject({
        method: "POST",
        url: `/v1/${pnid}/contacts`,
        headers: t.auth,
        payload: {
          phone_number: "+15551230005",
          metadata: { address: { city: "Jakarta", zip: "10110" }, tier: "gold" },
        },
      });
      const id = c.json().data.id;
      const patched = await h.inject({
        method: "PATCH",
        url: `/v1/contacts/${id}`,
        headers: t.auth,
        payload: { metadata: { address: { city: "Bandung" }, tier: null } },
      });
      assert.deepEqual(patched.json().data.metadata, { address: { city: "Bandung" } });
      // The same document in another key order is no change: updated_at stays.
      const same = await h.inject({
        method: "PATCH",
        url: `/v1/contacts/${id}`,
        headers: t.auth,
        payload: { metadata: { address: { city: "Bandung" } } },
      });
      assert.equal(same.json().data.updated_at, patched.json().data.updated_at);
    });

    test("limits: depth 5, 8 KiB, strings ≤ 500, keys 1–40, forbidden keys at any depth", async () => {
      const post = (metadata: unknown, phone: string) =>
        h.inject({
          method: "POST",
          url: `/v1/${pnid}/contacts`,
          headers: t.auth,
          payload: { phone_number: phone, metadata },
        });
      assert.equal((await post(depth(5), "+15551230010")).statusCode, 201, "depth 5 is accepted");
      const tooDeep = await post(depth(6), "+15551230011");
      assert.equal(tooDeep.statusCode, 400);
      assert.equal(tooDeep.json().error.code, "invalid_metadata");
      assert.match(tooDeep.json().error.message, /nested too deeply/);
      const big = await post({ a: Array.from({ length: 20 }, () => "x".repeat(450)) }, "+15551230012");
      assert.equal(big.json().error.code, "invalid_metadata");
      assert.match(big.json().error.message, /8 KiB/);
      const longString = await post({ a: { b: "x".repeat(501) } }, "+15551230013");
      assert.equal(longString.json().error.param, "metadata.a.b");
      const longKey = await post({ a: { ["k".repeat(41)]: 1 } }, "+15551230014");
      assert.equal(longKey.json().error.code, "invalid_metadata");
      for (const key of ["__proto__", "constructor", "prototype"]) {
        const res = await h.inject({
          method: "POST",
          url: `/v1/${pnid}/contacts`,
          headers: { ...t.auth, "content-type": "application/json" },
          payload: `{"phone_number":"+15551230015","metadata":{"a":[{"${key}":{"polluted":true}}]}}`,
        });
        assert.equal(res.statusCode, 400, res.body);
        assert.equal(res.json().error.code, "invalid_metadata");
        assert.equal(res.json().error.param, `metadata.a.0.${key}`);
      }
      assert.equal(({} as Json).polluted, undefined);
      const kapso = await h.inject({
        method: "POST",
        url: "/platform/v1/whatsapp/contacts",
        headers: { "x-api-key": t.key },
        payload: { contact: { wa_id: "15551230016", metadata: depth(6) } },
      });
      assert.equal(kapso.statusCode, 400);
      assert.equal(kapso.json().code, "invalid_metadata");
    });

    test("search and export are unaffected: metadata is not searched, and exported as its JSON", async () => {
      const res = await h.inject({ method: "GET", url: "/v1/contacts?search=jakarta", headers: t.auth });
      assert.equal(res.json().data.length, 0, "metadata values are not searched");
      const ndjson = await h.inject({
        method: "GET",
        url: "/v1/contacts/export?format=ndjson&phone=%2B15551230001",
        headers: t.auth,
      });
      assert.deepEqual(JSON.parse(ndjson.body.trim()).metadata, ADDRESS);
      const csv = await h.inject({
        method: "GET",
        url: "/v1/contacts/export?format=csv&phone=%2B15551230001",
        headers: t.auth,
      });
      assert.ok(csv.body.includes('"{""address"":{""city"":""Jakarta""'), csv.body);
    });
  });
}
