import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { createAccount } from "../../src/domain/accounts.ts";
import {
  type ContactInput,
  createContact,
  findContact,
  type Scope,
  updateContact,
} from "../../src/domain/contacts.ts";
import { ingestObservations } from "../../src/domain/inbound.ts";
import { createLabel } from "../../src/domain/labels.ts";
import {
  listDuplicates,
  mergeContacts,
  planMerge,
  UNDO_WINDOW_MS,
  undoMerge,
} from "../../src/domain/merges.ts";
import { createOrganization } from "../../src/domain/organizations.ts";
import { ApiError } from "../../src/errors.ts";
import { observationsOf, parseDelivery } from "../../src/http/webhooks/meta-delivery.ts";
import type { AccountRow } from "../../src/store/repositories/accounts.ts";
import { labelsOf, lockContacts } from "../../src/store/repositories/merges.ts";
import { storeKinds } from "../helpers/env.ts";
import { createTestStore, type TestStore } from "../helpers/harness.ts";

let pnid = 0;

for (const kind of storeKinds()) {
  describe(`merging contacts (domain) [${kind}]`, () => {
    let ts: TestStore;
    let scope: Scope;
    let accountA: AccountRow;
    let accountB: AccountRow;
    let labels: string[];
    let phoneSeq = 0;
    const phone = () => `+62812${String(++phoneSeq).padStart(7, "0")}`;

    before(async () => {
      ts = await createTestStore(kind, { migrated: true });
      await ts.store.migrate();
      const org = await createOrganization(ts.store.db, { name: "Merge Co" });
      scope = { db: ts.store.db, organizationId: org.id };
      const account = (n: number) =>
        createAccount(ts.store.db, org.id, {
          phone_number_id: `${700000000 + process.pid * 10 + ++pnid}`,
          phone_number: `+6281177700${n}`,
        });
      accountA = await account(1);
      accountB = await account(2);
      labels = [];
      for (const name of ["vip", "lead", "churn", "b2b"])
        labels.push((await createLabel(scope, { name })).id);
    });
    after(async () => {
      await ts.drop();
    });

    const create = (input: ContactInput, account = accountA) =>
      ts.store.transaction((tx) => createContact({ ...scope, db: tx }, account, input, "api"));
    const merge = (
      survivorId: string,
      from: string[],
      extra: Record<string, unknown> = {},
      at = Date.now(),
    ) =>
      ts.store.transaction((tx) => mergeContacts({ ...scope, db: tx }, { survivorId, from, ...extra }, at));
    const undo = (mergeId: string, at = Date.now()) =>
      ts.store.transaction((tx) => undoMerge({ ...scope, db: tx }, mergeId, at));
    const snapshot = async (ids: string[]) => {
      const rows = await lockContacts(ts.store.db, scope.organizationId, ids);
      const l = await labelsOf(ts.store.db, ids);
      return ids.map((id) => ({ ...rows.get(id)!, labels: [...l.get(id)!.keys()].sort() }));
    };
    const code = (fn: () => Promise<unknown>, expected: string) =>
      assert.rejects(fn, (e: unknown) => e instanceof ApiError && e.code === expected);

    test("the written rules: fields, metadata, labels, opt-out, timestamps; old ids answer the survivor", async () => {
      const older = await create({
        phone_number: phone(),
        email: "ana@x.io",
        metadata: { tier: "gold", a: 1 },
        label_ids: [labels[0]!],
      });
      const survivor = await create({
        phone_number: phone(),
        display_name: "Ana",
        metadata: { tier: "silver" },
        label_ids: [labels[1]!],
      });
      await ts.store.transaction((tx) =>
        updateContact({ ...scope, db: tx }, older.id, { marketing_preference: { opt_out: true, at: 1000 } }),
      );
      const { contact, merge: m, plan } = await merge(survivor.id, [older.id]);
      assert.equal(contact.id, survivor.id);
      assert.equal(contact.display_name, "Ana");
      assert.equal(contact.email, "ana@x.io");
      assert.deepEqual(JSON.parse(contact.metadata), { a: 1, tier: "silver" });
      assert.deepEqual(contact.labels.map((l) => l.id).sort(), [labels[0], labels[1]].sort());
      assert.equal(contact.marketing_opt_out, 1);
      assert.equal(contact.created_at, older.created_at);
      assert.equal(plan.identities_moved, 1);
      const found = await findContact(scope, older.id);
      assert.equal(found.contact.id, survivor.id);
      assert.equal(found.merged_into, survivor.id);
      // A create of the old identity reports the survivor.
      await assert.rejects(
        () => create({ phone_number: older.phone_number }),
        (e: unknown) =>
          e instanceof ApiError && e.code === "contact_exists" && e.extra?.existing_id === survivor.id,
      );
      await undo(m.id);
    });

    test("prefer picks whose value wins, per field and for metadata", async () => {
      const a = await create({
        phone_number: phone(),
        display_name: "A",
        email: "a@x.io",
        metadata: { k: "a" },
      });
      const b = await create({
        phone_number: phone(),
        display_name: "B",
        email: "b@x.io",
        metadata: { k: "b" },
      });
      const plan = await planMerge(
        scope,
        { survivorId: a.id, from: [b.id], prefer: { email: b.id, metadata: b.id } },
        Date.now(),
      );
      assert.equal(plan.set.email, "b@x.io");
      assert.equal(plan.set.display_name, undefined);
      assert.deepEqual(plan.metadata.value, { k: "b" });
      assert.deepEqual(plan.refusals, []);
    });

    test("bad input is refused with its code, and nothing is written", async () => {
      const a = await create({ phone_number: phone() });
      const b = await create({ phone_number: phone() });
      const c = await create({ phone_number: phone() });
      const before = await snapshot([a.id, b.id, c.id]);
      await code(() => merge(a.id, [a.id]), "merge_with_itself");
      await code(() => merge(a.id, [b.id, b.id]), "invalid_field_value");
      await code(
        () =>
          merge(
            a.id,
            Array.from({ length: 11 }, () => b.id),
          ),
        "invalid_field_value",
      );
      await code(() => merge(a.id, ["ctc_01J0000000000000000000000Z"]), "resource_not_found");
      await code(() => merge(a.id, [b.id], { prefer: { email: c.id } }), "invalid_field_value");
      await code(() => merge(a.id, [b.id], { expectedUpdatedAt: a.updated_at - 1 }), "contact_changed");
      assert.deepEqual(await snapshot([a.id, b.id, c.id]), before);
      const { merge: m } = await merge(b.id, [c.id]);
      // b survived a merge that can be undone: merging it away would make a chain.
      await code(() => merge(a.id, [b.id]), "merge_chain");
      // c is merged away already.
      await code(() => merge(a.id, [c.id]), "contact_merged");
      await code(() => merge(c.id, [a.id]), "contact_merged");
      await undo(m.id);
      await code(() => undo(m.id), "merge_already_undone");
      const { merge: late } = await merge(b.id, [c.id]);
      await code(() => undo(late.id, late.created_at + UNDO_WINDOW_MS), "merge_undo_expired");
      await undo(late.id);
    });

    test("contacts of two accounts merge; a Meta message from the old identity lands on the survivor", async () => {
      const number = phone();
      const inA = await create({ phone_number: number, display_name: "Budi" });
      const inB = await create({ phone_number: number }, accountB);
      const { merge: m } = await merge(inA.id, [inB.id]);
      const delivery = {
        object: "whatsapp_business_account",
        entry: [
          {
            id: "1",
            changes: [
              {
                field: "messages",
                value: {
                  messaging_product: "whatsapp",
                  metadata: { phone_number_id: accountB.phone_number_id, display_phone_number: "1" },
                  contacts: [{ wa_id: number.slice(1), profile: { name: "Budi WA" } }],
                  messages: [
                    {
                      from: number.slice(1),
                      id: "wamid.1",
                      timestamp: "1",
                      type: "text",
                      text: { body: "hi" },
                    },
                  ],
                },
              },
            ],
          },
        ],
      };
      const report = await ts.store.transaction((tx) =>
        ingestObservations(
          tx,
          observationsOf(parseDelivery(Buffer.from(JSON.stringify(delivery)))),
          Date.now(),
        ),
      );
      assert.equal(report.created, 0);
      const survivor = (await findContact(scope, inA.id)).contact;
      assert.equal(survivor.profile_name, "Budi WA");
      assert.equal(survivor.phone_number, number);
      const [tomb] = await snapshot([inB.id]);
      assert.equal(tomb!.merged_into, inA.id);
      assert.equal(tomb!.profile_name, null);
      await undo(m.id);
    });

    test("duplicates are found on write through the keys, and leave the list when merged", async () => {
      const email = `dup${phoneSeq}@x.io`;
      const a = await create({ phone_number: phone(), email });
      const b = await create({ phone_number: phone(), email: email.toUpperCase() });
      const num = phone();
      const c = await create({ phone_number: num, display_name: "Citra Dewi" });
      const d = await create(
        { phone_number: `+62813${num.slice(-7)}`, display_name: "citra dewi" },
        accountB,
      );
      const bsuid = `ID.${phoneSeq}`;
      const e = await create({ business_scoped_user_id: bsuid });
      const f = await create({ business_scoped_user_id: bsuid }, accountB);
      const all = await listDuplicates(scope, undefined, undefined, 100);
      const reasonOf = (x: string, y: string) =>
        all.find((p) => p.contacts.some((c1) => c1.id === x) && p.contacts.some((c2) => c2.id === y))
          ?.reasons;
      assert.deepEqual(reasonOf(a.id, b.id), ["same_email"]);
      assert.deepEqual(reasonOf(c.id, d.id), ["same_name_similar_phone"]);
      assert.deepEqual(reasonOf(e.id, f.id), ["same_business_scoped_user_id"]);
      const inB = await listDuplicates(scope, accountB.id, undefined, 100);
      assert.ok(inB.some((p) => p.contacts.some((x) => x.id === d.id)));
      assert.ok(!inB.some((p) => p.contacts.some((x) => x.id === a.id)));
      // Changing the email removes the pair.
      await ts.store.transaction((tx) => updateContact({ ...scope, db: tx }, b.id, { email: "other@x.io" }));
      const after = await listDuplicates(scope, undefined, undefined, 100);
      assert.ok(!after.some((p) => p.id === [a.id, b.id].sort().join(".")));
      // A merge removes the pair; its undo finds it again.
      const { merge: m } = await merge(e.id, [f.id]);
      const merged = await listDuplicates(scope, undefined, undefined, 100);
      assert.ok(!merged.some((p) => p.contacts.some((x) => x.id === f.id)));
      await undo(m.id);
      const undone = await listDuplicates(scope, undefined, undefined, 100);
      assert.ok(undone.some((p) => p.id === [e.id, f.id].sort().join(".")));
    });

    test("undo keeps later changes on the survivor", async () => {
      const a = await create({ phone_number: phone(), metadata: { x: 1 } });
      const b = await create({ phone_number: phone(), email: "b2@x.io", metadata: { y: 2, z: 3 } });
      const { merge: m } = await merge(a.id, [b.id]);
      await ts.store.transaction((tx) =>
        updateContact({ ...scope, db: tx }, a.id, { email: "later@x.io", metadata: { y: 20 } }),
      );
      const result = await undo(m.id);
      assert.equal(result.contact.email, "later@x.io");
      assert.deepEqual(JSON.parse(result.contact.metadata), { x: 1, y: 20 });
      assert.deepEqual(result.kept.sort(), ["email", "metadata"]);
    });

    test("property: merging random sets loses no identity, label or opt-out, and undo restores the records", async () => {
      const contactArb = fc.record({
        phone: fc.boolean(),
        email: fc.option(fc.constantFrom("p@x.io", "q@x.io"), { nil: undefined }),
        name: fc.option(fc.constantFrom("Dewi", "Eko"), { nil: undefined }),
        optOut: fc.boolean(),
        labels: fc.subarray([0, 1, 2, 3]),
        meta: fc.dictionary(fc.constantFrom("a", "b", "c"), fc.integer({ min: 0, max: 9 }), { maxKeys: 3 }),
        accountB: fc.boolean(),
      });
      await fc.assert(
        fc.asyncProperty(fc.array(contactArb, { minLength: 2, maxLength: 5 }), async (specs) => {
          const made = [];
          for (const [i, spec] of specs.entries()) {
            const c = await create(
              {
                phone_number: spec.phone || i === 0 ? phone() : undefined,
                business_scoped_user_id: spec.phone && i !== 0 ? undefined : `ID.p${++phoneSeq}`,
                email: spec.email,
                display_name: spec.name,
                metadata: spec.meta,
                label_ids: spec.labels.map((n) => labels[n]!),
                marketing_preference: spec.optOut ? { opt_out: true, at: 5000 + i } : undefined,
              },
              spec.accountB ? accountB : accountA,
            );
            made.push(c);
          }
          const ids = made.map((c) => c.id);
          const before = await snapshot(ids);
          const [survivorId, ...from] = ids;
          const { contact, merge: m } = await merge(survivorId!, from);
          // Every label and opt-out of the set is on the survivor; every identity leads to it.
          const union = new Set(before.flatMap((c) => c.labels));
          assert.deepEqual(contact.labels.map((l) => l.id).sort(), [...union].sort());
          assert.equal(contact.marketing_opt_out, before.some((c) => c.marketing_opt_out === 1) ? 1 : 0);
          const metaKeys = new Set(before.flatMap((c) => Object.keys(JSON.parse(c.metadata))));
          assert.deepEqual(Object.keys(JSON.parse(contact.metadata)).sort(), [...metaKeys].sort());
          for (const id of ids) assert.equal((await findContact(scope, id)).contact.id, survivorId);
          const afterMerge = await snapshot(from);
          for (const [i, row] of afterMerge.entries()) {
            assert.equal(row.merged_into, survivorId);
            // A tombstone keeps its identity columns as they were.
            assert.equal(row.phone_number, before[i + 1]!.phone_number);
            assert.equal(row.business_scoped_user_id, before[i + 1]!.business_scoped_user_id);
          }
          await undo(m.id);
          const restored = await snapshot(ids);
          const strip = ({ updated_at: _u, ...rest }: (typeof restored)[number]) => rest;
          assert.deepEqual(restored.map(strip), before.map(strip));
          for (const [i, row] of restored.entries()) assert.ok(row.updated_at > before[i]!.updated_at);
        }),
        { numRuns: 25 },
      );
    });
  });
}
