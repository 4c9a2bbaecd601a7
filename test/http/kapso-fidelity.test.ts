import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { contactUuid, uuidToUlid } from "../../src/ids.ts";
import { storeKinds } from "../helpers/env.ts";
import { createHarness, type Harness, type Json, type Tenant } from "../helpers/harness.ts";

const SIX_DIGITS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

for (const kind of storeKinds()) {
  describe(`Kapso fidelity [${kind}]`, () => {
    let h: Harness;
    let t: Tenant;
    let pnid: string;
    const key = () => ({ "x-api-key": t.key });
    before(async () => {
      h = await createHarness(kind);
      t = await h.tenant();
      pnid = (await h.account(t.orgId)).phoneNumberId;
      const res = await h.inject({
        method: "POST",
        url: `/v1/${pnid}/contacts/batch`,
        headers: t.auth,
        payload: {
          mode: "create",
          contacts: Array.from({ length: 45 }, (_, i) => ({
            phone_number: `+1555700${String(i).padStart(4, "0")}`,
          })),
        },
      });
      assert.equal(res.json().summary.created, 45);
    });
    after(async () => h?.close());

    test("a bare list answers like Kapso's example: meta (page 1 of 20, totals) and paging", async () => {
      const res = await h.inject({ method: "GET", url: "/platform/v1/whatsapp/contacts", headers: key() });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.deepEqual(body.meta, { page: 1, per_page: 20, total_pages: 3, total_count: 45 });
      assert.equal(body.data.length, 20);
      assert.equal(typeof body.paging.cursors.after, "string");
      const filtered = await h.inject({
        method: "GET",
        url: "/platform/v1/whatsapp/contacts?wa_id_contains=1555700001",
        headers: key(),
      });
      assert.equal(filtered.json().meta.total_count, 10, "filtered totals are exact (0010–0019)");
      const cursorMode = await h.inject({
        method: "GET",
        url: "/platform/v1/whatsapp/contacts?limit=5",
        headers: key(),
      });
      assert.equal(cursorMode.json().meta, undefined, "cursor mode keeps its own shape");
    });

    test("ids are UUIDs (the same 128 bits), timestamps have six fractional digits; both id forms work", async () => {
      const list = (
        await h.inject({ method: "GET", url: "/platform/v1/whatsapp/contacts?limit=1", headers: key() })
      ).json();
      const contact: Json = list.data[0];
      assert.match(contact.id, UUID);
      assert.match(contact.created_at, SIX_DIGITS);
      assert.match(contact.updated_at, SIX_DIGITS);
      const ulidId = `ctc_${uuidToUlid(contact.id)}`;
      assert.equal(contactUuid(ulidId), contact.id);
      const native = await h.inject({ method: "GET", url: `/v1/contacts/${ulidId}`, headers: t.auth });
      assert.equal(native.statusCode, 200);
      assert.equal(
        native.json().data.created_at.replace("Z", "000Z"),
        contact.created_at,
        "the same instant",
      );
      for (const id of [contact.id, ulidId, contact.id.toUpperCase()]) {
        const platform = await h.inject({
          method: "GET",
          url: `/platform/v1/whatsapp/contacts/${id}`,
          headers: key(),
        });
        assert.equal(platform.statusCode, 200, `${id}: ${platform.body}`);
        assert.equal(platform.json().data.id, contact.id);
        const graph = await h.inject({
          method: "GET",
          url: `/meta/whatsapp/v24.0/${pnid}/contacts/${id}`,
          headers: key(),
        });
        assert.equal(graph.statusCode, 200, graph.body);
        assert.equal(graph.json().id, contact.id);
        assert.match(graph.json().created_at, SIX_DIGITS);
      }
      const byUuid = await h.inject({ method: "GET", url: `/v1/contacts/${contact.id}`, headers: t.auth });
      assert.equal(byUuid.statusCode, 200, "the UUID form is accepted on /v1");
      assert.equal(byUuid.json().data.id, ulidId, "and /v1 answers with its own form");
      const patched = await h.inject({
        method: "PATCH",
        url: `/v1/contacts/${contact.id}`,
        headers: t.auth,
        payload: { name: "By UUID" },
      });
      assert.equal(patched.statusCode, 200, patched.body);
    });

    test("offset mode: X-Total-Pages and Link rel=last stop at the last page inside the window", async () => {
      // 45 contacts at per_page=1: 45 pages, all reachable (page ≤ 50).
      const small = await h.inject({
        method: "GET",
        url: "/platform/v1/whatsapp/contacts?page=1&per_page=1",
        headers: key(),
      });
      assert.equal(small.headers["x-total-pages"], "45");
      // per_page=100 reaches 50 pages of 5,000 rows at most; with 45 rows there is one page.
      const big = await h.inject({
        method: "GET",
        url: "/platform/v1/whatsapp/contacts?page=1&per_page=100",
        headers: key(),
      });
      assert.equal(big.headers["x-total-pages"], "1");
      // A window that would pass 5,000 rows: per_page=100 with (simulated) more rows is capped at page 50;
      // here, per_page=2 → at most 50 pages, 23 exist.
      const two = await h.inject({
        method: "GET",
        url: "/platform/v1/whatsapp/contacts?page=1&per_page=2",
        headers: key(),
      });
      assert.equal(two.headers["x-total-pages"], "23");
      const last = /<([^>]+)>; rel="last"/.exec(String(two.headers.link))![1]!;
      const lastPage = await h.inject({ method: "GET", url: last, headers: key() });
      assert.equal(lastPage.statusCode, 200, "rel=last is reachable");
    });
  });
}

describe("offset mode caps at the window [sqlite]", () => {
  test("page 67 of per_page=1 would be 400: rel=last and X-Total-Pages say 50", async () => {
    const h = await createHarness("sqlite");
    try {
      const t = await h.tenant();
      const pnid = (await h.account(t.orgId)).phoneNumberId;
      const res = await h.inject({
        method: "POST",
        url: `/v1/${pnid}/contacts/batch`,
        headers: t.auth,
        payload: {
          mode: "create",
          contacts: Array.from({ length: 67 }, (_, i) => ({
            phone_number: `+1555800${String(i).padStart(4, "0")}`,
          })),
        },
      });
      assert.equal(res.json().summary.created, 67);
      const page = await h.inject({
        method: "GET",
        url: "/platform/v1/whatsapp/contacts?page=49&per_page=1",
        headers: t.auth,
      });
      assert.equal(page.json().meta.total_pages, 67, "meta tells the true page count");
      assert.equal(page.headers["x-total-pages"], "50");
      assert.equal(page.headers["x-total"], "67");
      const link = String(page.headers.link);
      const last = /<([^>]+)>; rel="last"/.exec(link)![1]!;
      assert.match(last, /page=50/);
      assert.equal((await h.inject({ method: "GET", url: last, headers: t.auth })).statusCode, 200);
      const atLast = await h.inject({ method: "GET", url: last, headers: t.auth });
      assert.ok(!String(atLast.headers.link).includes('rel="next"'), "no next past the window");
    } finally {
      await h.close();
    }
  });
});
