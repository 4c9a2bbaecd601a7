import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { updateContact } from "../../src/domain/contacts.ts";
import { storeKinds } from "../helpers/env.ts";
import { createHarness, type Harness, type Json, type Tenant } from "../helpers/harness.ts";

/**
 * Changes that used to emit nothing (issue 14): deleting and renaming a label,
 * creating one, unlinking a deleted customer, `labels` on a single contact
 * update, and a restored contact keeping an opt-out at unmerge. Each is read
 * back through GET /v1/events?after=<sequence>, the receiver's catch-up feed.
 */
for (const kind of storeKinds()) {
  describe(`every change writes its event [${kind}]`, () => {
    let h: Harness;
    let t: Tenant;
    let pnid: string;

    before(async () => {
      h = await createHarness(kind, {}, { webhooks: false });
      t = await h.tenant("Coverage Co");
      pnid = (await h.account(t.orgId)).phoneNumberId;
    });
    after(async () => {
      await h.close();
    });

    const call = async (method: "GET" | "POST" | "PATCH" | "DELETE", url: string, payload?: unknown) => {
      const res = await h.inject({
        method,
        url,
        headers: { ...t.auth, "x-api-key": t.key },
        ...(payload === undefined ? {} : { payload: payload as Json }),
      });
      assert.ok(res.statusCode < 300, `${method} ${url}: ${res.statusCode} ${res.body}`);
      return res.body === "" ? undefined : res.json();
    };
    /** The newest sequence so far: events after it are what the next step wrote. */
    const mark = async (): Promise<number> => {
      const page = await call("GET", "/v1/events?limit=1");
      return page.data[0]?.sequence ?? 0;
    };
    const eventsAfter = async (seq: number): Promise<Json[]> =>
      (await call("GET", `/v1/events?after=${seq}&limit=100`)).data;
    const contact = async (phone: string, extra: Record<string, unknown> = {}) =>
      (await call("POST", `/v1/${pnid}/contacts`, { phone_number: phone, ...extra })).data;

    test("label created, renamed (one label.updated), deleted (label.removed per carrier, then label.deleted)", async () => {
      let seq = await mark();
      const label = (await call("POST", "/v1/labels", { name: "gold", color: "amber" })).data;
      let events = await eventsAfter(seq);
      assert.deepEqual(
        events.map((e) => e.type),
        ["label.created"],
      );
      assert.deepEqual(events[0].data.label, { id: label.id, name: "gold", color: "amber" });

      const a = await contact("+628111700001", { labels: [label.id] });
      const b = await contact("+628111700002", { labels: [label.id] });
      const bystander = await contact("+628111700003");

      seq = await mark();
      await call("PATCH", `/v1/labels/${label.id}`, { name: "Platinum" });
      events = await eventsAfter(seq);
      assert.deepEqual(
        events.map((e) => e.type),
        ["label.updated"],
        "a rename is one event, not one per contact",
      );
      assert.deepEqual(events[0].data.label, { id: label.id, name: "Platinum", color: "amber" });
      assert.deepEqual(events[0].data.changed_fields, ["name"]);
      assert.deepEqual(events[0].data.previous_attributes, { name: "gold" });
      // A PATCH that changes nothing tells nothing.
      seq = await mark();
      await call("PATCH", `/v1/labels/${label.id}`, { color: "amber" });
      assert.deepEqual(await eventsAfter(seq), []);

      const beforeDelete = (await call("GET", `/v1/contacts/${a.id}`)).data.updated_at;
      seq = await mark();
      await call("DELETE", `/v1/labels/${label.id}`);
      events = await eventsAfter(seq);
      assert.deepEqual(
        events.map((e) => e.type),
        ["label.removed", "label.removed", "label.deleted"],
      );
      const removed = events.filter((e) => e.type === "label.removed");
      assert.deepEqual(removed.map((e) => e.data.contact.id).sort(), [a.id, b.id].sort());
      for (const e of removed) {
        assert.deepEqual(e.data.label, { id: label.id, name: "Platinum", color: "amber" });
        assert.equal(e.data.label_deleted, true);
        assert.deepEqual(e.data.contact.labels, [], "the contact as committed, without the label");
      }
      assert.ok(!events.some((e) => e.data.contact?.id === bystander.id));
      const after = (await call("GET", `/v1/contacts/${a.id}`)).data;
      assert.ok(after.updated_at > beforeDelete, "the carriers changed (updated_after syncs see them)");
    });

    test("labels on a single contact update: label.added for each new one only", async () => {
      const x = (await call("POST", "/v1/labels", { name: "x-label" })).data;
      const y = (await call("POST", "/v1/labels", { name: "y-label" })).data;
      const c = await contact("+628111700010", { labels: [x.id] });
      // No surface's PATCH takes labels today; the domain command does (docs/webhooks.md).
      const update = (input: Parameters<typeof updateContact>[2]) =>
        h.store.transaction((tx) => updateContact({ db: tx, organizationId: t.orgId }, c.id, input));
      let seq = await mark();
      const updated = (await update({ label_ids: [x.id, y.id] })).contact;
      let events = await eventsAfter(seq);
      assert.deepEqual(
        events.map((e) => [e.type, e.data.label.id]),
        [["label.added", y.id]],
      );
      assert.equal(events[0].data.label.name, "y-label");
      assert.ok(updated.updated_at > Date.parse(c.updated_at), "a label change is a change of the contact");
      // Both already carried: nothing.
      seq = await mark();
      await update({ label_ids: [x.id, y.id] });
      assert.deepEqual(await eventsAfter(seq), []);
      // A field and a label at once: contact.updated and label.added.
      const z = (await call("POST", "/v1/labels", { name: "z-label" })).data;
      seq = await mark();
      await update({ display_name: "Zed", label_ids: [z.id] });
      events = await eventsAfter(seq);
      assert.deepEqual(events.map((e) => e.type).sort(), ["contact.updated", "label.added"]);
    });

    test("a deleted customer's contacts are unlinked with contact.updated (platform surface)", async () => {
      const customer = (await call("POST", "/platform/v1/customers", { customer: { name: "Acme" } })).data;
      const linked = await call("POST", "/platform/v1/whatsapp/contacts", {
        contact: { wa_id: "628111700020", customer_id: customer.id, phone_number_id: pnid },
      });
      const other = await contact("+628111700021");
      const seq = await mark();
      await call("DELETE", `/platform/v1/customers/${customer.id}`);
      const events = await eventsAfter(seq);
      assert.deepEqual(
        events.map((e) => e.type),
        ["contact.updated"],
      );
      // Events show the native contact (which has no customer_id); changed_fields names it.
      assert.equal(events[0].data.contact.phone_number, "+628111700020");
      assert.deepEqual(events[0].data.changed_fields, ["customer_id"]);
      assert.notEqual(events[0].data.contact.id, other.id);
      const platform = await call("GET", `/platform/v1/whatsapp/contacts/${linked.data.id}`);
      assert.equal(platform.data.customer_id, null);
    });

    test("unmerge: a restored contact that keeps the survivor's later opt-out is told", async () => {
      const scope = { dialect: h.store.dialect, organizationId: t.orgId };
      const optOut = (id: string, at: number) =>
        h.store.transaction((tx) =>
          updateContact({ ...scope, db: tx }, id, { marketing_preference: { opt_out: true, at } }),
        );
      const a = await contact("+628111700030", { name: "Keeper" });
      const b = await contact("+628111700031", { name: "Stopped" });
      const c = await contact("+628111700032", { name: "Quiet" });
      // b had opted out (as Meta's user_preferences tells it): the merge carries it to a.
      await optOut(b.id, Date.now() - 60_000);
      await call("POST", `/v1/contacts/${a.id}/merge`, { from: [b.id, c.id] });
      // A newer opt-out reaches the survivor after the merge: at the undo every restored contact keeps it.
      await optOut(a.id, Date.now());
      const seq = await mark();
      await call("POST", `/v1/contacts/${a.id}/unmerge`, {});
      const events = await eventsAfter(seq);
      assert.deepEqual(
        events.map((e) => [e.type, e.data.contact.id]),
        [
          ["contact.unmerged", a.id],
          ["contact.updated", c.id],
          ["contact.opted_out", c.id],
        ],
      );
      assert.deepEqual(events[1].data.changed_fields, ["marketing_opt_out"]);
      assert.equal(events[2].data.contact.marketing_opt_out, true);
    });
  });
}
