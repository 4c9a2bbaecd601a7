import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { storeKinds } from "../../helpers/env.ts";
import { createHarness, type Harness, type Json, type Tenant } from "../../helpers/harness.ts";

for (const kind of storeKinds()) {
  describe(`labels [${kind}]`, () => {
    let h: Harness;
    let t: Tenant;
    let pnid: string;
    before(async () => {
      h = await createHarness(kind);
      t = await h.tenant("Labels Co");
      pnid = (await h.account(t.orgId)).phoneNumberId;
    });
    after(async () => {
      await h.close();
    });

    const post = (url: string, payload: unknown, headers = t.auth) =>
      h.inject({ method: "POST", url, headers, payload: payload as Json });
    const contact = async (phone: string) => {
      const res = await post("/v1/contacts", { phone_number: phone });
      assert.equal(res.statusCode, 201, res.body);
      return res.json().data as Json;
    };

    test("create with default colour, 409 label_exists case-insensitively, validation", async () => {
      const vip = await post("/v1/labels", { name: "VIP" });
      assert.equal(vip.statusCode, 201, vip.body);
      const label = vip.json().data;
      assert.match(label.id, /^lbl_[0-9A-HJKMNP-TV-Z]{26}$/);
      assert.equal(label.object, "label");
      assert.equal(label.color, "gray");
      const dup = await post("/v1/labels", { name: " vip ", color: "red" });
      assert.equal(dup.statusCode, 409, dup.body);
      assert.equal(dup.json().error.code, "label_exists");
      assert.equal(dup.json().error.existing_id, label.id);
      const badColor = await post("/v1/labels", { name: "x", color: "purple" });
      assert.equal(badColor.statusCode, 400);
      assert.equal(badColor.json().error.param, "color");
      const tooLong = await post("/v1/labels", { name: "x".repeat(51) });
      assert.equal(tooLong.statusCode, 400);
      assert.equal(tooLong.json().error.param, "name");
      const blank = await post("/v1/labels", { name: "   " });
      assert.equal(blank.json().error.code, "invalid_field_value");
      const unknown = await post("/v1/labels", { name: "y", colour: "red" });
      assert.equal(unknown.json().error.code, "unknown_field");
    });

    test("get, patch (no-op keeps updated_at; rename onto another is 409), list with cursors, delete", async () => {
      const a = (await post("/v1/labels", { name: "alpha", color: "green" })).json().data;
      const b = (await post("/v1/labels", { name: "beta" })).json().data;
      const got = await h.inject({ method: "GET", url: `/v1/labels/${a.id}`, headers: t.auth });
      assert.deepEqual(got.json().data, a);
      const noop = await h.inject({
        method: "PATCH",
        url: `/v1/labels/${a.id}`,
        headers: t.auth,
        payload: { color: "green" },
      });
      assert.equal(noop.json().data.updated_at, a.updated_at);
      const renamed = await h.inject({
        method: "PATCH",
        url: `/v1/labels/${a.id}`,
        headers: t.auth,
        payload: { name: "Alpha Team", color: "sky" },
      });
      assert.equal(renamed.statusCode, 200, renamed.body);
      assert.equal(renamed.json().data.name, "Alpha Team");
      assert.equal(renamed.json().data.color, "sky");
      assert.ok(renamed.json().data.updated_at > a.updated_at);
      const clash = await h.inject({
        method: "PATCH",
        url: `/v1/labels/${a.id}`,
        headers: t.auth,
        payload: { name: "BETA" },
      });
      assert.equal(clash.statusCode, 409);
      assert.equal(clash.json().error.code, "label_exists");
      const empty = await h.inject({
        method: "PATCH",
        url: `/v1/labels/${a.id}`,
        headers: t.auth,
        payload: {},
      });
      assert.equal(empty.json().error.code, "missing_required_field");

      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const url = `/v1/labels?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
        const page = await h.inject({ method: "GET", url, headers: t.auth });
        assert.equal(page.statusCode, 200, page.body);
        seen.push(...page.json().data.map((l: Json) => l.id));
        cursor = page.json().next_cursor;
        assert.equal(page.json().has_more, cursor !== null);
      } while (cursor);
      assert.ok(seen.includes(a.id) && seen.includes(b.id));
      assert.equal(new Set(seen).size, seen.length, "no label twice");
      const tampered = await h.inject({ method: "GET", url: "/v1/labels?cursor=abc.def", headers: t.auth });
      assert.equal(tampered.json().error.code, "invalid_cursor");

      const other = await h.tenant("Other");
      const foreign = await h.inject({ method: "GET", url: `/v1/labels/${a.id}`, headers: other.auth });
      assert.equal(foreign.statusCode, 404, "another organisation's label is 404");

      const del = await h.inject({ method: "DELETE", url: `/v1/labels/${b.id}`, headers: t.auth });
      assert.deepEqual(del.json().data, { id: b.id, object: "label", deleted: true });
      const again = await h.inject({ method: "DELETE", url: `/v1/labels/${b.id}`, headers: t.auth });
      assert.equal(again.statusCode, 404);
    });

    test("attach and detach are idempotent; label filter; deleting a label detaches it everywhere", async () => {
      const label = (await post("/v1/labels", { name: "gold", color: "amber" })).json().data;
      const c = await contact("+628122220001");
      const attach = () => post(`/v1/contacts/${c.id}/labels`, { label_id: label.id });
      const first = await attach();
      assert.equal(first.statusCode, 200, first.body);
      assert.deepEqual(first.json().data.labels, [{ id: label.id, name: "gold", color: "amber" }]);
      assert.ok(first.json().data.updated_at > c.updated_at, "a label change bumps updated_at");
      const second = await attach();
      assert.deepEqual(second.json().data, first.json().data, "attaching twice changes nothing");
      const scoped = await post(`/v1/${pnid}/contacts/${c.id}/labels`, { label_id: label.id });
      assert.equal(scoped.statusCode, 200, scoped.body);

      const filtered = await h.inject({
        method: "GET",
        url: `/v1/contacts?label=${label.id}`,
        headers: t.auth,
      });
      assert.deepEqual(
        filtered.json().data.map((x: Json) => x.id),
        [c.id],
      );
      const missing = await post(`/v1/contacts/${c.id}/labels`, {
        label_id: "lbl_01J0000000000000000000000A",
      });
      assert.equal(missing.statusCode, 404);
      assert.equal(missing.json().error.param, "label_id");

      const detach = () =>
        h.inject({ method: "DELETE", url: `/v1/contacts/${c.id}/labels/${label.id}`, headers: t.auth });
      const d1 = await detach();
      assert.equal(d1.statusCode, 200, d1.body);
      assert.deepEqual(d1.json().data.labels, []);
      const d2 = await detach();
      assert.equal(d2.statusCode, 200);
      assert.equal(
        d2.json().data.updated_at,
        d1.json().data.updated_at,
        "detaching an absent label is a no-op",
      );

      await attach();
      const del = await h.inject({ method: "DELETE", url: `/v1/labels/${label.id}`, headers: t.auth });
      assert.equal(del.statusCode, 200);
      const after = await h.inject({ method: "GET", url: `/v1/contacts/${c.id}`, headers: t.auth });
      assert.deepEqual(after.json().data.labels, []);
      const rows = await h.store.db
        .selectFrom("contact_labels")
        .selectAll()
        .where("label_id", "=", label.id)
        .execute();
      assert.equal(rows.length, 0);
    });

    test("bulk_label: one transaction, applied and skipped counted exactly, both path styles", async () => {
      const label = (await post("/v1/labels", { name: "bulk" })).json().data;
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await contact(`+62812333000${i}`)).id);
      await post(`/v1/contacts/${ids[0]}/labels`, { label_id: label.id });
      const ghost = "ctc_01J0000000000000000000000A";
      const res = await post("/v1/contacts/bulk_label", {
        contact_ids: [...ids, ghost],
        label_id: label.id,
        operation: "attach",
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().data.applied, 4);
      assert.equal(res.json().data.skipped, 2);
      assert.deepEqual(res.json().data.not_found, [ghost]);
      const listed = await h.inject({
        method: "GET",
        url: `/v1/contacts?label=${label.id}&limit=100`,
        headers: t.auth,
      });
      assert.equal(listed.json().data.length, 5);
      const detach = await post(`/v1/${pnid}/contacts/bulk_label`, {
        contact_ids: ids.slice(0, 2),
        label_id: label.id,
        operation: "detach",
      });
      assert.equal(detach.json().data.applied, 2);
      assert.equal(detach.json().data.skipped, 0);
      const tooMany = await post("/v1/contacts/bulk_label", {
        contact_ids: Array.from({ length: 1001 }, () => ghost),
        label_id: label.id,
        operation: "attach",
      });
      assert.equal(tooMany.statusCode, 400);
      assert.equal(tooMany.json().error.param, "contact_ids");
      const badLabel = await post("/v1/contacts/bulk_label", {
        contact_ids: ids,
        label_id: "lbl_01J0000000000000000000000A",
        operation: "attach",
      });
      assert.equal(badLabel.statusCode, 404);
      const other = await h.tenant("Else");
      const foreign = await post(
        "/v1/contacts/bulk_label",
        { contact_ids: ids, label_id: label.id, operation: "attach" },
        other.auth,
      );
      assert.equal(foreign.statusCode, 404, "a foreign label is not found");
    });
  });
}
