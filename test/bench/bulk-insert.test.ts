import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type BulkContact, bulkInsertContacts } from "../../bench/lib/bulk-insert.ts";
import { createAccount } from "../../src/domain/accounts.ts";
import { createOrganization } from "../../src/domain/organizations.ts";
import { isApiError } from "../../src/errors.ts";
import { newId } from "../../src/ids.ts";
import { insertLabelRows } from "../../src/store/repositories/bulk-insert.ts";
import { storeKinds } from "../helpers/env.ts";
import { createTestStore, type TestStore } from "../helpers/harness.ts";

for (const kind of storeKinds()) {
  describe(`bulkInsertContacts [${kind}]`, () => {
    let t: TestStore;
    let orgId: string;
    let otherOrgId: string;
    let accountId: string;
    let foreignAccountId: string;
    let labelId: string;
    const scope = () => ({ db: t.store.db, organizationId: orgId });
    const count = async () =>
      Number(
        (
          await t.store.db
            .selectFrom("contacts")
            .select((eb) => eb.fn.countAll<number | string>().as("n"))
            .where("organization_id", "=", orgId)
            .executeTakeFirstOrThrow()
        ).n,
      );

    before(async () => {
      t = await createTestStore(kind, { migrated: true });
      await t.store.migrate();
      orgId = (await createOrganization(t.store.db, { name: "Bulk" })).id;
      otherOrgId = (await createOrganization(t.store.db, { name: "Other" })).id;
      accountId = (
        await createAccount(t.store.db, orgId, {
          phone_number_id: "700000000001",
          phone_number: "+6281100000101",
        })
      ).id;
      foreignAccountId = (
        await createAccount(t.store.db, otherOrgId, {
          phone_number_id: "700000000002",
          phone_number: "+6281100000102",
        })
      ).id;
      labelId = newId("lbl");
      const at = Date.now();
      await insertLabelRows(t.store.db, [
        {
          id: labelId,
          organization_id: orgId,
          name: "vip",
          name_lower: "vip",
          color: "green",
          created_at: at,
          updated_at: at,
        },
      ]);
    });
    after(async () => {
      await t.drop();
    });

    test("writes every row through the field rules, in several statements, with labels", async () => {
      const at = Date.UTC(2025, 0, 1);
      const contacts: BulkContact[] = Array.from({ length: 2500 }, (_, i) => ({
        accountId,
        at: at + i,
        input: {
          phone_number: `+62 812-${String(10_000_000 + i)}`,
          display_name: `  Person ${i}  `,
          email: i % 2 === 0 ? `person${i}@example.com` : undefined,
          metadata: { n: i, tier: "gold" },
          label_ids: i % 10 === 0 ? [labelId] : undefined,
        },
      }));
      const result = await t.store.transaction((tx) =>
        bulkInsertContacts({ ...scope(), db: tx }, contacts, "import"),
      );
      assert.deepEqual(result, { inserted: 2500, skipped: 0 });
      assert.equal(await count(), 2500);
      const row = await t.store.db
        .selectFrom("contacts")
        .selectAll()
        .where("phone_number", "=", "+6281210000007")
        .executeTakeFirstOrThrow();
      assert.equal(row.display_name, "Person 7", "names are trimmed like a single create");
      assert.equal(row.metadata, '{"n":7,"tier":"gold"}');
      assert.equal(row.source, "import");
      assert.equal(row.created_at, at + 7);
      assert.equal(row.updated_at, at + 7);
      assert.match(row.search_text, /person 7/);
      const labelled = await t.store.db
        .selectFrom("contact_labels")
        .select((eb) => eb.fn.countAll<number | string>().as("n"))
        .where("label_id", "=", labelId)
        .executeTakeFirstOrThrow();
      assert.equal(Number(labelled.n), 250);
    });

    test("skips identities the account already holds, without touching them", async () => {
      const result = await t.store.transaction((tx) =>
        bulkInsertContacts(
          { ...scope(), db: tx },
          [
            { accountId, at: 1, input: { phone_number: "+6281210000007", display_name: "Changed" } },
            { accountId, at: 2, input: { phone_number: "+6281299999999", display_name: "New" } },
          ],
          "import",
        ),
      );
      assert.deepEqual(result, { inserted: 1, skipped: 1 });
      const row = await t.store.db
        .selectFrom("contacts")
        .select("display_name")
        .where("phone_number", "=", "+6281210000007")
        .executeTakeFirstOrThrow();
      assert.equal(row.display_name, "Person 7");
    });

    test("an invalid row names its index and nothing of the batch is written", async () => {
      const before = await count();
      const attempt = t.store.transaction((tx) =>
        bulkInsertContacts(
          { ...scope(), db: tx },
          [
            { accountId, at: 1, input: { phone_number: "+6281288888888" } },
            { accountId, at: 2, input: { phone_number: "not a phone" } },
          ],
          "import",
        ),
      );
      await assert.rejects(attempt, (error) => {
        assert.ok(isApiError(error));
        assert.equal(error.code, "invalid_phone_number");
        assert.equal(error.param, "[1].phone_number");
        return true;
      });
      await assert.rejects(
        t.store.transaction((tx) =>
          bulkInsertContacts(
            { ...scope(), db: tx },
            [{ accountId, at: 1, input: { display_name: "No identity" } }],
            "import",
          ),
        ),
        (error) =>
          isApiError(error) && error.code === "missing_required_field" && error.param === "[0].phone_number",
      );
      assert.equal(await count(), before);
    });

    test("another organisation's account or label is not found", async () => {
      await assert.rejects(
        t.store.transaction((tx) =>
          bulkInsertContacts(
            { ...scope(), db: tx },
            [{ accountId: foreignAccountId, at: 1, input: { phone_number: "+6281277777777" } }],
            "import",
          ),
        ),
        (error) =>
          isApiError(error) && error.code === "resource_not_found" && error.param === "[0].account_id",
      );
      await assert.rejects(
        t.store.transaction((tx) =>
          bulkInsertContacts(
            { db: tx, organizationId: otherOrgId },
            [
              {
                accountId: foreignAccountId,
                at: 1,
                input: { phone_number: "+6281277777777", label_ids: [labelId] },
              },
            ],
            "import",
          ),
        ),
        (error) => isApiError(error) && error.code === "resource_not_found" && error.param === "labels",
      );
    });
  });
}
