import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { contactUuid } from "../../../src/ids.ts";
import { storeKinds } from "../../helpers/env.ts";
import { errorShapeProblem } from "../../helpers/error-shape.ts";
import { createHarness, type Harness, type Json, type Tenant } from "../../helpers/harness.ts";

let seq = 0;
const phone = () => `+62857${String(process.pid % 1000).padStart(3, "0")}${String(++seq).padStart(4, "0")}`;

for (const kind of storeKinds()) {
  describe(`merging contacts over HTTP [${kind}]`, () => {
    let h: Harness;
    let t: Tenant;
    let a1: { phoneNumberId: string };
    let a2: { phoneNumberId: string };
    before(async () => {
      h = await createHarness(kind);
      t = await h.tenant("Merge HTTP");
      a1 = await h.account(t.orgId);
      a2 = await h.account(t.orgId);
    });
    after(async () => {
      await h.close();
    });

    const call = (
      method: "GET" | "POST" | "DELETE",
      url: string,
      payload?: unknown,
      headers: Record<string, string> = {},
    ) =>
      h.inject({
        method,
        url,
        headers: { ...t.auth, ...headers },
        ...(payload === undefined ? {} : { payload: payload as Json }),
      });
    const create = async (body: Record<string, unknown>, account = a1) => {
      const res = await call("POST", `/v1/${account.phoneNumberId}/contacts`, body);
      assert.equal(res.statusCode, 201, res.body);
      return res.json().data as Json;
    };
    const refused = (res: Awaited<ReturnType<typeof call>>, status: number, code: string) => {
      assert.equal(res.statusCode, status, res.body);
      assert.equal(res.json().error.code, code, res.body);
      assert.equal(errorShapeProblem("/v1", res.statusCode, res.headers, res.body), undefined);
    };

    test("preview answers field by field and writes nothing; the merge and the old id on all three surfaces", async () => {
      const number = phone();
      const a = await create({
        phone_number: number,
        name: "Sari",
        email: "sari@x.io",
        metadata: { tier: "gold" },
      });
      const b = await create({ phone_number: number, metadata: { city: "Bandung" } }, a2);
      const preview = await call("POST", `/v1/contacts/${a.id}/merge?preview=true`, { from: [b.id] });
      assert.equal(preview.statusCode, 200, preview.body);
      const p = preview.json().data;
      assert.equal(p.object, "merge_preview");
      assert.equal(p.can_merge, true);
      assert.deepEqual(p.metadata.value, { city: "Bandung", tier: "gold" });
      assert.equal(p.identities_moved, 1);
      assert.ok(p.fields.some((f: Json) => f.field === "name" && f.value === "Sari" && f.source === a.id));
      assert.equal((await call("GET", `/v1/contacts/${b.id}`)).json().merged_into, undefined);

      const res = await call("POST", `/v1/contacts/${a.id}/merge`, { from: [b.id] });
      assert.equal(res.statusCode, 200, res.body);
      const m = res.json().data;
      assert.match(m.id, /^mrg_/);
      assert.deepEqual(m.merged_ids, [b.id]);
      assert.deepEqual(m.contact.metadata, { city: "Bandung", tier: "gold" });

      const native = await call("GET", `/v1/contacts/${b.id}`);
      assert.equal(native.statusCode, 200);
      assert.equal(native.json().data.id, a.id);
      assert.equal(native.json().merged_into, a.id);
      const platform = await h.inject({
        method: "GET",
        url: `/platform/v1/whatsapp/contacts/${b.id}`,
        headers: { "x-api-key": t.key },
      });
      assert.equal(platform.statusCode, 200, platform.body);
      // The Kapso surfaces write contact ids in their UUID form (docs/migrating-from-kapso.md).
      assert.equal(platform.json().merged_into, contactUuid(a.id));
      const graph = await h.inject({
        method: "GET",
        url: `/meta/whatsapp/v23.0/${a2.phoneNumberId}/contacts/${number.slice(1)}`,
        headers: { "x-api-key": t.key },
      });
      assert.equal(graph.statusCode, 200, graph.body);
      assert.equal(graph.json().id, contactUuid(a.id));
      assert.equal(graph.json().merged_into, contactUuid(a.id));
      // The tombstone is not listed; the survivor is.
      const list = await call("GET", `/v1/contacts?phone=${encodeURIComponent(number)}`);
      assert.deepEqual(
        list.json().data.map((c: Json) => c.id),
        [a.id],
      );

      const history = await call("GET", `/v1/contacts/${b.id}/merges`);
      assert.equal(history.statusCode, 200, history.body);
      assert.deepEqual(
        history.json().data.map((x: Json) => x.id),
        [m.id],
      );
      assert.deepEqual(
        history.json().identities.map((x: Json) => x.contact_id),
        [b.id],
      );

      const undone = await call("POST", `/v1/contacts/${a.id}/unmerge`, {});
      assert.equal(undone.statusCode, 200, undone.body);
      assert.deepEqual(undone.json().data.restored_ids, [b.id]);
      const back = await call("GET", `/v1/contacts/${b.id}`);
      assert.equal(back.json().data.id, b.id);
      assert.deepEqual(back.json().data.metadata, { city: "Bandung" });
      refused(await call("POST", `/v1/merges/${m.id}/undo`), 409, "merge_already_undone");
      refused(await call("POST", `/v1/contacts/${a.id}/unmerge`, {}), 422, "no_undoable_merge");

      // The merge and its undo are events of the survivor (outbound webhooks, GET /v1/events).
      const events = (await call("GET", "/v1/events?limit=100")).json().data as Json[];
      const merged = events.find((e) => e.type === "contact.merged" && e.data.merge_id === m.id);
      assert.ok(merged, "a contact.merged event");
      assert.equal(merged.data.contact.id, a.id);
      assert.deepEqual(merged.data.merged_ids, [b.id]);
      const unmerged = events.find((e) => e.type === "contact.unmerged" && e.data.merge_id === m.id);
      assert.ok(unmerged, "a contact.unmerged event");
      assert.deepEqual(unmerged.data.restored_ids, [b.id]);
      assert.ok(merged.sequence < unmerged.sequence);
    });

    test("maintained counts (platform meta.total_count) leave the tombstone out, as lists do", async () => {
      const own = await h.tenant("Merge counts");
      const acct = await h.account(own.orgId);
      const post = async (body: Record<string, unknown>) => {
        const res = await h.inject({
          method: "POST",
          url: `/v1/${acct.phoneNumberId}/contacts`,
          headers: own.auth,
          payload: body as Json,
        });
        assert.equal(res.statusCode, 201, res.body);
        return res.json().data as Json;
      };
      const total = async (query = "") => {
        const res = await h.inject({
          method: "GET",
          url: `/platform/v1/whatsapp/contacts${query}`,
          headers: { "x-api-key": own.key },
        });
        assert.equal(res.statusCode, 200, res.body);
        return res.json().meta.total_count as number;
      };
      const a = await post({ phone_number: phone(), name: "Keep" });
      const b = await post({ phone_number: phone(), name: "Fold" });
      await post({ phone_number: phone(), name: "Other" });
      assert.equal(await total(), 3);
      const merged = await h.inject({
        method: "POST",
        url: `/v1/contacts/${a.id}/merge`,
        headers: own.auth,
        payload: { from: [b.id] },
      });
      assert.equal(merged.statusCode, 200, merged.body);
      assert.equal(await total(), 2, "the organisation's total");
      assert.equal(await total(`?phone_number_id=${acct.phoneNumberId}`), 2, "the account's total");
      const listed = await h.inject({ method: "GET", url: "/v1/contacts", headers: own.auth });
      assert.equal(listed.json().data.length, 2, "the list agrees");
      const undone = await h.inject({
        method: "POST",
        url: `/v1/contacts/${a.id}/unmerge`,
        headers: own.auth,
        payload: {},
      });
      assert.equal(undone.statusCode, 200, undone.body);
      assert.equal(await total(), 3, "an undone merge counts the restored contact again");
    });

    test("old ids and identities: create, batch, labels, PATCH and DELETE reach the survivor", async () => {
      const number = phone();
      const a = await create({ phone_number: phone(), name: "Survivor" });
      const b = await create({ phone_number: number });
      assert.equal((await call("POST", `/v1/contacts/${a.id}/merge`, { from: [b.id] })).statusCode, 200);
      const dup = await call("POST", `/v1/${a1.phoneNumberId}/contacts`, { phone_number: number });
      refused(dup, 409, "contact_exists");
      assert.equal(dup.json().error.existing_id, a.id);
      const batch = await call("POST", `/v1/${a1.phoneNumberId}/contacts/batch`, {
        mode: "upsert",
        contacts: [{ phone_number: number, name: "Renamed" }, { phone_number: phone() }],
      });
      assert.equal(batch.statusCode, 200, batch.body);
      const [first, second] = batch.json().data;
      assert.equal(first.status, "error");
      assert.equal(first.error.code, "contact_merged");
      assert.equal(first.error.merged_into, a.id);
      assert.equal(second.status, "created");
      const label = await call("POST", "/v1/labels", { name: `merged-${seq}` });
      const labelled = await call("POST", `/v1/contacts/${b.id}/labels`, { label_id: label.json().data.id });
      assert.equal(labelled.statusCode, 200, labelled.body);
      assert.equal(labelled.json().data.id, a.id);
      assert.deepEqual(
        labelled.json().data.labels.map((l: Json) => l.id),
        [label.json().data.id],
      );
      const patched = await h.inject({
        method: "PATCH",
        url: `/v1/contacts/${b.id}`,
        headers: t.auth,
        payload: { email: "patched@x.io" },
      });
      assert.equal(patched.json().data.id, a.id);
      assert.equal(patched.json().data.email, "patched@x.io");
      assert.equal((await call("DELETE", `/v1/contacts/${b.id}`)).statusCode, 200);
      refused(await call("GET", `/v1/contacts/${a.id}`), 404, "resource_not_found");
      refused(await call("GET", `/v1/contacts/${b.id}`), 404, "resource_not_found");
    });

    test("bad input: 4xx with the envelope and a stable code, nothing merged", async () => {
      const a = await create({ phone_number: phone() });
      const b = await create({ phone_number: phone() });
      const gone = await create({ phone_number: phone() });
      await call("DELETE", `/v1/contacts/${gone.id}`);
      const other = await h.tenant("Other Org");
      const otherAccount = await h.account(other.orgId);
      const foreign = await h.inject({
        method: "POST",
        url: `/v1/${otherAccount.phoneNumberId}/contacts`,
        headers: other.auth,
        payload: { phone_number: phone() },
      });
      const foreignId = foreign.json().data.id;
      refused(await call("POST", `/v1/contacts/${a.id}/merge`, { from: [a.id] }), 422, "merge_with_itself");
      refused(
        await call("POST", `/v1/contacts/${a.id}/merge`, { from: [gone.id] }),
        404,
        "resource_not_found",
      );
      refused(
        await call("POST", `/v1/contacts/${a.id}/merge`, { from: [foreignId] }),
        404,
        "resource_not_found",
      );
      refused(
        await call("POST", `/v1/contacts/${gone.id}/merge`, { from: [a.id] }),
        404,
        "resource_not_found",
      );
      refused(
        await call("POST", `/v1/contacts/${a.id}/merge`, { from: Array.from({ length: 11 }, () => b.id) }),
        400,
        "invalid_field_value",
      );
      refused(
        await call("POST", `/v1/contacts/${a.id}/merge`, { from: ["ctc_nope"] }),
        400,
        "invalid_field_value",
      );
      refused(await call("POST", `/v1/contacts/${a.id}/merge`, { from: [] }), 400, "invalid_field_value");
      refused(
        await call("POST", `/v1/contacts/${a.id}/merge`, { from: [b.id], prefer: { colour: b.id } }),
        400,
        "unknown_field",
      );
      refused(
        await call("POST", `/v1/contacts/${a.id}/merge`, { from: [b.id], prefer: { email: gone.id } }),
        400,
        "invalid_field_value",
      );
      refused(
        await call("POST", `/v1/contacts/${a.id}/merge`, {
          from: [b.id],
          expected_updated_at: "2020-01-01T00:00:00.000Z",
        }),
        409,
        "contact_changed",
      );
      // The preview lists the refusal instead of failing.
      const preview = await call("POST", `/v1/contacts/${a.id}/merge?preview=true`, { from: [a.id] });
      assert.equal(preview.statusCode, 200);
      assert.equal(preview.json().data.can_merge, false);
      assert.deepEqual(
        preview.json().data.refusals.map((r: Json) => r.code),
        ["merge_with_itself"],
      );
      assert.equal((await call("GET", `/v1/contacts/${b.id}`)).json().merged_into, undefined);
      assert.equal((await call("GET", `/v1/contacts/${a.id}/merges`)).json().data.length, 0);
    });

    test("Idempotency-Key: a retried merge replays the recorded answer", async () => {
      const a = await create({ phone_number: phone() });
      const b = await create({ phone_number: phone() });
      const key = { "idempotency-key": `merge-${a.id}` };
      const first = await call("POST", `/v1/contacts/${a.id}/merge`, { from: [b.id] }, key);
      assert.equal(first.statusCode, 200, first.body);
      assert.equal(first.headers["idempotent-replayed"], "false");
      const again = await call("POST", `/v1/contacts/${a.id}/merge`, { from: [b.id] }, key);
      assert.equal(again.statusCode, 200, again.body);
      assert.equal(again.headers["idempotent-replayed"], "true");
      assert.equal(again.json().data.id, first.json().data.id);
      assert.equal((await call("GET", `/v1/contacts/${a.id}/merges`)).json().data.length, 1);
    });

    test("a chain (A into B while B into C, at once) merges one and refuses the other", async () => {
      for (let round = 0; round < 5; round++) {
        const a = await create({ phone_number: phone() });
        const b = await create({ phone_number: phone() });
        const c = await create({ phone_number: phone() });
        const [ab, bc] = await Promise.all([
          call("POST", `/v1/contacts/${b.id}/merge`, { from: [a.id] }),
          call("POST", `/v1/contacts/${c.id}/merge`, { from: [b.id] }),
        ]);
        const statuses = [ab.statusCode, bc.statusCode].sort();
        assert.deepEqual(statuses, [200, 422], `${ab.body} ${bc.body}`);
        const loser = ab.statusCode === 422 ? ab : bc;
        assert.ok(["contact_merged", "merge_chain"].includes(loser.json().error.code), loser.body);
        // Nothing half-merged: every id answers one live contact, and exactly one merge exists.
        const survivorOf = async (id: string) => (await call("GET", `/v1/contacts/${id}`)).json().data.id;
        if (ab.statusCode === 200) {
          assert.equal(await survivorOf(a.id), b.id);
          assert.equal(await survivorOf(c.id), c.id);
        } else {
          assert.equal(await survivorOf(b.id), c.id);
          assert.equal(await survivorOf(a.id), a.id);
        }
      }
    });

    test("duplicates: both path styles, signed cursors walk every pair once", async () => {
      const t2 = await h.tenant("Dup Co");
      const x1 = await h.account(t2.orgId);
      const x2 = await h.account(t2.orgId);
      const make = async (account: { phoneNumberId: string }, body: Record<string, unknown>) => {
        const res = await h.inject({
          method: "POST",
          url: `/v1/${account.phoneNumberId}/contacts`,
          headers: t2.auth,
          payload: body,
        });
        assert.equal(res.statusCode, 201, res.body);
        return res.json().data.id as string;
      };
      const expected = new Set<string>();
      for (let i = 0; i < 4; i++) {
        const number = phone();
        const p = await make(x1, { phone_number: number });
        const q = await make(x2, { phone_number: number });
        expected.add([p, q].sort().join("."));
      }
      const e1 = await make(x1, { phone_number: phone(), email: "same@x.io" });
      const e2 = await make(x1, { phone_number: phone(), email: "SAME@x.io" });
      expected.add([e1, e2].sort().join("."));
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res = await h.inject({
          method: "GET",
          url: `/v1/contacts/duplicates?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
          headers: t2.auth,
        });
        assert.equal(res.statusCode, 200, res.body);
        const body = res.json();
        for (const pair of body.data) {
          seen.push(pair.id);
          assert.equal(pair.contacts.length, 2);
          assert.ok(pair.reasons.length > 0);
        }
        cursor = body.next_cursor;
        assert.equal(body.has_more, cursor !== null);
      } while (cursor);
      assert.deepEqual(seen.sort(), [...expected].sort());
      const scoped = await h.inject({
        method: "GET",
        url: `/v1/${x2.phoneNumberId}/contacts/duplicates`,
        headers: t2.auth,
      });
      assert.equal(scoped.json().data.length, 4);
      assert.ok(scoped.json().data.every((p: Json) => p.reasons.includes("same_phone_other_account")));
      const first = await h.inject({
        method: "GET",
        url: "/v1/contacts/duplicates?limit=1",
        headers: t2.auth,
      });
      const bad = await h.inject({
        method: "GET",
        url: `/v1/${x2.phoneNumberId}/contacts/duplicates?cursor=${encodeURIComponent(first.json().next_cursor)}`,
        headers: t2.auth,
      });
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json().error.code, "invalid_cursor");
    });

    test("OpenAPI describes the merge routes", async () => {
      const doc = (await h.inject({ method: "GET", url: "/v1/openapi.json" })).json();
      for (const path of [
        "/v1/contacts/duplicates",
        "/v1/{phone_number_id}/contacts/duplicates",
        "/v1/contacts/{id}/merge",
        "/v1/contacts/{id}/unmerge",
        "/v1/merges/{merge_id}/undo",
        "/v1/contacts/{id}/merges",
      ]) {
        assert.ok(doc.paths[path], path);
      }
    });
  });
}
