import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type BatchItem, countResults, writeContactBatch } from "../../../src/domain/contact-batch.ts";
import { findAccountByPhoneNumberId } from "../../../src/store/repositories/accounts.ts";
import { storeKinds } from "../../helpers/env.ts";
import { createHarness, type Harness, type Json, type Tenant } from "../../helpers/harness.ts";

for (const kind of storeKinds()) {
  describe(`contacts batch [${kind}]`, () => {
    let h: Harness;
    let t: Tenant;
    let pnid: string;
    before(async () => {
      h = await createHarness(kind);
      t = await h.tenant("Batch Co");
      pnid = (await h.account(t.orgId)).phoneNumberId;
    });
    after(async () => {
      await h.close();
    });
    const batch = (payload: unknown, url = `/v1/${pnid}/contacts/batch`, headers = t.auth) =>
      h.inject({ method: "POST", url, headers, payload: payload as Json });

    test("create: per-item results in input order; one bad item never fails the others", async () => {
      const existing = await h.inject({
        method: "POST",
        url: "/v1/contacts",
        headers: t.auth,
        payload: { phone_number: "+628150000009" },
      });
      const existingId = existing.json().data.id;
      const res = await batch({
        mode: "create",
        contacts: [
          { phone_number: "+62 815-0000-001", name: "Ani", metadata: { tier: "gold" } },
          { phone_number: "not a phone" },
          { phone_number: "+628150000002", email: "bad@" },
          { phone_number: "+628150000009" },
          { phone_number: 628150000003 },
          { phone_number: "+628150000004", colour: "red" },
          "a string",
          { name: "no identity" },
          { phone_number: "+628150000005", labels: ["lbl_01J0000000000000000000000A"] },
          {
            phone_number: "+628150000006",
            metadata: { too: { deep: { to: { be: { kept: { x: { y: 1 } } } } } } },
          },
          { business_scoped_user_id: "US.13491208655302741918" },
          { phone_number: "+628150000001", email: "ani@example.com" },
        ],
      });
      assert.equal(res.statusCode, 200, res.body);
      const data = res.json().data as Json[];
      assert.deepEqual(
        data.map((r) => r.index),
        data.map((_, i) => i),
      );
      assert.deepEqual(
        data.map((r) => [r.status, r.error?.code]),
        [
          ["created", undefined],
          ["error", "invalid_phone_number"],
          ["error", "invalid_email"],
          ["error", "contact_exists"],
          ["error", "invalid_field_value"],
          ["error", "unknown_field"],
          ["error", "invalid_field_value"],
          ["error", "missing_required_field"],
          ["error", "resource_not_found"],
          ["error", "invalid_metadata"],
          ["created", undefined],
          ["updated", undefined],
        ],
      );
      assert.equal(data[3].error.existing_id, existingId);
      assert.equal(data[11].id, data[0].id, "a duplicate inside one batch merges like upsert");
      assert.deepEqual(res.json().summary, { created: 2, updated: 1, unchanged: 0, failed: 9 });
      const ani = await h.inject({ method: "GET", url: `/v1/contacts/${data[0].id}`, headers: t.auth });
      assert.equal(ani.json().data.email, "ani@example.com");
      assert.equal(ani.json().data.name, "Ani");
      assert.deepEqual(ani.json().data.metadata, { tier: "gold" });
      const count = await h.store.db
        .selectFrom("contacts")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .where("organization_id", "=", t.orgId)
        .executeTakeFirstOrThrow();
      assert.equal(Number(count.n), 3, "only the good items were written");
    });

    test("upsert: matches on identity, merges like PATCH, unchanged when nothing changes, labels attach", async () => {
      const label = (
        await h.inject({ method: "POST", url: "/v1/labels", headers: t.auth, payload: { name: "batch-vip" } })
      ).json().data;
      const first = await batch({
        mode: "upsert",
        contacts: [{ phone_number: "+628160000001", name: "Budi", metadata: { a: 1, b: "x" } }],
      });
      const id = first.json().data[0].id;
      assert.equal(first.json().data[0].status, "created");
      const before = (await h.inject({ method: "GET", url: `/v1/contacts/${id}`, headers: t.auth })).json()
        .data;
      const same = await batch({
        mode: "upsert",
        contacts: [{ phone_number: "+62 816 0000 001", name: "Budi", metadata: { a: 1 } }],
      });
      assert.deepEqual(same.json().data[0], { index: 0, status: "unchanged", id });
      const unchanged = (await h.inject({ method: "GET", url: `/v1/contacts/${id}`, headers: t.auth })).json()
        .data;
      assert.equal(unchanged.updated_at, before.updated_at, "a no-op does not bump updated_at");
      const merged = await batch({
        mode: "upsert",
        contacts: [
          { phone_number: "+628160000001", metadata: { b: null, c: true }, labels: [label.id] },
          { phone_number: "+628160000001", labels: [label.id] },
          { phone_number: "+628160000002", name: "Citra" },
        ],
      });
      assert.deepEqual(
        merged.json().data.map((r: Json) => r.status),
        ["updated", "unchanged", "created"],
      );
      const after = (await h.inject({ method: "GET", url: `/v1/contacts/${id}`, headers: t.auth })).json()
        .data;
      assert.deepEqual(after.metadata, { a: 1, c: true });
      assert.deepEqual(
        after.labels.map((l: Json) => l.id),
        [label.id],
      );
      assert.equal(after.name, "Budi");
      assert.ok(after.updated_at > before.updated_at);
      const search = await h.inject({ method: "GET", url: "/v1/contacts?search=citra", headers: t.auth });
      assert.equal(search.json().data.length, 1, "the search index follows batch writes");
    });

    test("upsert: an identity change onto another contact's phone is contact_exists", async () => {
      const res = await batch({
        mode: "upsert",
        contacts: [
          { phone_number: "+628170000001", business_scoped_user_id: "US.1" },
          { phone_number: "+628170000002", business_scoped_user_id: "US.2" },
          { phone_number: "+628170000001", business_scoped_user_id: "US.2" },
        ],
      });
      const data = res.json().data;
      assert.deepEqual(
        data.map((r: Json) => r.status),
        ["created", "created", "error"],
      );
      assert.equal(data[2].error.code, "contact_exists");
      assert.equal(data[2].error.existing_id, data[1].id);
    });

    test("org-level path names the account with from; limits and account rules", async () => {
      const other = await h.tenant("Two Numbers");
      const a1 = await h.account(other.orgId);
      await h.account(other.orgId);
      const required = await batch(
        { contacts: [{ phone_number: "+628180000001" }] },
        "/v1/contacts/batch",
        other.auth,
      );
      assert.equal(required.statusCode, 422, required.body);
      assert.equal(required.json().error.code, "account_required");
      const named = await batch(
        { contacts: [{ phone_number: "+628180000001" }], from: a1.phoneNumberId },
        "/v1/contacts/batch",
        other.auth,
      );
      assert.equal(named.statusCode, 200, named.body);
      assert.equal(named.json().data[0].status, "created");
      const c = await h.inject({
        method: "GET",
        url: `/v1/contacts/${named.json().data[0].id}`,
        headers: other.auth,
      });
      assert.equal(c.json().data.whatsapp_account.phone_number_id, a1.phoneNumberId);
      const tooMany = await batch({ contacts: Array.from({ length: 1001 }, () => ({ phone_number: "+1" })) });
      assert.equal(tooMany.statusCode, 400);
      assert.equal(tooMany.json().error.param, "contacts");
      const empty = await batch({ contacts: [] });
      assert.equal(empty.statusCode, 400);
      const badMode = await batch({ mode: "replace", contacts: [{ phone_number: "+628180000001" }] });
      assert.equal(badMode.json().error.param, "mode");
      const foreign = await batch(
        { contacts: [{ phone_number: "+628180000003" }] },
        `/v1/${pnid}/contacts/batch`,
        other.auth,
      );
      assert.equal(foreign.statusCode, 404, "another organisation's number is 404");
    });

    test("1,000 items in one request; the domain writes them in a few statements, not one per row", async () => {
      const contacts = Array.from({ length: 1000 }, (_, i) => ({
        phone_number: `+6281900${String(i).padStart(5, "0")}`,
        name: `Person ${i}`,
        metadata: { n: i },
      }));
      const res = await batch({ mode: "upsert", contacts });
      assert.equal(res.statusCode, 200, res.body.slice(0, 500));
      assert.deepEqual(res.json().summary, { created: 1000, updated: 0, unchanged: 0, failed: 0 });
      const again = await batch({ mode: "upsert", contacts });
      assert.deepEqual(again.json().summary, { created: 0, updated: 0, unchanged: 1000, failed: 0 });

      // Count the statements one batch of 1,000 (new, updated and unchanged) costs.
      let statements = 0;
      const counting = h.store.db.withPlugin({
        transformQuery: (args) => args.node,
        transformResult: async (args) => {
          statements++;
          return args.result;
        },
      });
      const account = await findAccountByPhoneNumberId(h.store.db, pnid);
      const mixed: BatchItem[] = contacts.map((c, i) => ({
        input: {
          phone_number: i < 500 ? c.phone_number : `+6281910${String(i).padStart(5, "0")}`,
          display_name: i % 2 === 0 ? `Renamed ${i}` : c.name,
        },
      }));
      const results = await writeContactBatch({ db: counting, organizationId: t.orgId }, account!, mixed, {
        mode: "upsert",
        source: "api",
      });
      assert.deepEqual(countResults(results), { created: 500, updated: 250, unchanged: 250, failed: 0 });
      // Up to 10 for the contacts, 6 for their 750 events (endpoints, views, sequence, events, deliveries).
      assert.ok(statements <= 16, `${statements} statements for 1,000 items`);
    });
  });
}
