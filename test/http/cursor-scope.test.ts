import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { storeKinds } from "../helpers/env.ts";
import { createHarness, type Harness, type Json, type Tenant } from "../helpers/harness.ts";

/**
 * A cursor is bound to the organisation it was issued to: organisation B
 * presenting A's cursor gets 400 invalid_cursor on every list of every
 * surface, even where B has rows of its own and the list has no filters.
 */
for (const kind of storeKinds()) {
  describe(`cursors are bound to their organisation [${kind}]`, () => {
    let h: Harness;
    const tenants: Array<{ t: Tenant; phoneNumberId: string }> = [];
    before(async () => {
      h = await createHarness(kind);
      for (const [n, name] of ["A", "B"].entries()) {
        const t = await h.tenant(name);
        const account = await h.account(t.orgId);
        tenants.push({ t, phoneNumberId: account.phoneNumberId });
        for (let i = 0; i < 3; i++) {
          const contact = await h.inject({
            method: "POST",
            url: `/v1/${account.phoneNumberId}/contacts`,
            headers: t.auth,
            payload: { phone_number: `+6281400${n}0000${i}` },
          });
          assert.equal(contact.statusCode, 201, contact.body);
          await h.inject({ method: "POST", url: "/v1/labels", headers: t.auth, payload: { name: `l${i}` } });
          await h.inject({
            method: "POST",
            url: `/v1/imports?phone_number_id=${account.phoneNumberId}`,
            headers: { ...t.auth, "content-type": "text/csv" },
            payload: `phone_number\n+6281401${n}000${i}\n`,
          });
          await h.inject({
            method: "POST",
            url: "/platform/v1/customers",
            headers: t.auth,
            payload: { customer: { name: `c${i}` } },
          });
        }
      }
    });
    after(async () => h?.close());

    /** Each list: the URL of its first page, how to read its next cursor, and how to pass one. */
    const LISTS: Array<{
      name: string;
      first: (pnid: string) => string;
      cursorOf: (body: Json) => string | null;
      withCursor: (pnid: string, cursor: string) => string;
    }> = [
      {
        name: "/v1/contacts",
        first: () => "/v1/contacts?limit=1",
        cursorOf: (b) => b.next_cursor,
        withCursor: (_p, c) => `/v1/contacts?limit=1&cursor=${encodeURIComponent(c)}`,
      },
      {
        name: "/v1/labels",
        first: () => "/v1/labels?limit=1",
        cursorOf: (b) => b.next_cursor,
        withCursor: (_p, c) => `/v1/labels?limit=1&cursor=${encodeURIComponent(c)}`,
      },
      {
        name: "/v1/imports",
        first: () => "/v1/imports?limit=1",
        cursorOf: (b) => b.next_cursor,
        withCursor: (_p, c) => `/v1/imports?limit=1&cursor=${encodeURIComponent(c)}`,
      },
      {
        name: "/platform/v1/whatsapp/contacts (Kapso Base64 cursors)",
        first: () => "/platform/v1/whatsapp/contacts?limit=1",
        cursorOf: (b) => b.paging.cursors.after,
        withCursor: (_p, c) => `/platform/v1/whatsapp/contacts?limit=1&after=${encodeURIComponent(c)}`,
      },
      {
        name: "/platform/v1/customers",
        first: () => "/platform/v1/customers?limit=1",
        cursorOf: (b) => b.paging.cursors.after,
        withCursor: (_p, c) => `/platform/v1/customers?limit=1&after=${encodeURIComponent(c)}`,
      },
      {
        name: "/meta/whatsapp/…/contacts",
        first: (p) => `/meta/whatsapp/v24.0/${p}/contacts?limit=1`,
        cursorOf: (b) => b.paging.cursors.after,
        withCursor: (p, c) => `/meta/whatsapp/v24.0/${p}/contacts?limit=1&after=${encodeURIComponent(c)}`,
      },
    ];

    test("Kapso cursors stay Base64 of JSON keyset values, with the organisation's tag", async () => {
      const [a] = tenants as [(typeof tenants)[0]];
      const res = await h.inject({
        method: "GET",
        url: "/platform/v1/whatsapp/contacts?limit=1",
        headers: a.t.auth,
      });
      const decoded = JSON.parse(Buffer.from(res.json().paging.cursors.after, "base64").toString("utf8"));
      assert.deepEqual(Object.keys(decoded).sort(), ["created_at", "id", "org"]);
      const forged = Buffer.from(JSON.stringify({ created_at: decoded.created_at, id: decoded.id })).toString(
        "base64",
      );
      const bare = await h.inject({
        method: "GET",
        url: `/platform/v1/whatsapp/contacts?limit=1&after=${encodeURIComponent(forged)}`,
        headers: a.t.auth,
      });
      assert.equal(bare.json().code, "invalid_cursor", "a cursor without the tag is refused");
    });

    for (const list of LISTS) {
      test(`${list.name}: the owner pages on, another organisation is refused`, async () => {
        const [a, b] = tenants as [(typeof tenants)[0], (typeof tenants)[0]];
        const first = await h.inject({ method: "GET", url: list.first(a.phoneNumberId), headers: a.t.auth });
        assert.equal(first.statusCode, 200, first.body);
        const cursor = list.cursorOf(first.json());
        assert.ok(cursor, "a next cursor");
        const own = await h.inject({
          method: "GET",
          url: list.withCursor(a.phoneNumberId, cursor),
          headers: a.t.auth,
        });
        assert.equal(own.statusCode, 200, own.body);
        const foreign = await h.inject({
          method: "GET",
          url: list.withCursor(b.phoneNumberId, cursor),
          headers: b.t.auth,
        });
        assert.equal(foreign.statusCode, 400, foreign.body);
        const body = foreign.json();
        if (typeof body.error?.code === "number") {
          // Graph-shaped: code 100 (invalid parameter), the message names the cursor.
          assert.equal(body.error.code, 100);
          assert.match(body.error.message, /cursor/);
        } else {
          assert.equal(body.error?.code ?? body.code, "invalid_cursor", foreign.body);
        }
      });
    }
  });
}
