import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Migrator } from "kysely";
import { buildRow } from "../../src/domain/contacts.ts";
import { createOrganization } from "../../src/domain/organizations.ts";
import { migrationProvider } from "../../src/store/migrations/index.ts";
import { storeKinds } from "../helpers/env.ts";
import { createTestStore } from "../helpers/harness.ts";

for (const kind of storeKinds()) {
  describe(`migration 0004_customers [${kind}]`, () => {
    test("upgrades a store that already holds contacts: they stay, unlinked, and customers link", async () => {
      const fresh = await createTestStore(kind);
      try {
        const migrator = new Migrator({
          db: fresh.store.db,
          provider: migrationProvider(kind),
          migrationTableName: "phonebook_migrations",
          migrationLockTableName: "phonebook_migrations_lock",
        });
        const first = await migrator.migrateTo("0001_foundation");
        assert.equal(first.error, undefined);
        const org = await createOrganization(fresh.store.db, { name: "Before 0004" });
        // The account as 0001 stores it (later migrations add columns, e.g. 0012's default_country).
        const account = { id: "wba_01J00000000000000000000001" };
        await fresh.store.db
          .insertInto("accounts")
          .values({
            id: account.id,
            organization_id: org.id,
            phone_number_id: "106540352242922",
            phone_number: "+628111222333",
            name: null,
            status: "connected",
            created_at: 1,
            updated_at: 1,
          })
          .execute();
        const { customer_id: _absent, ...row } = buildRow(
          org.id,
          account.id,
          { phone_number: "+15551234567", profile_name: "Old" },
          "api",
          Date.now(),
        );
        // The pre-0004 table has no customer_id column.
        await fresh.store.db
          .insertInto("contacts")
          .values(row as never)
          .execute();

        const upgrade = await fresh.store.migrate();
        assert.ok(upgrade.applied.includes("0004_customers"), upgrade.applied.join(","));
        const after = await fresh.store.db
          .selectFrom("contacts")
          .select(["id", "customer_id", "profile_name"])
          .executeTakeFirstOrThrow();
        assert.deepEqual(after, { id: row.id, customer_id: null, profile_name: "Old" });

        const customerId = "2f1c2b1e-8a7d-4c1e-9f0a-0123456789ab";
        await fresh.store.db
          .insertInto("customers")
          .values({
            id: customerId,
            organization_id: org.id,
            name: "C",
            external_customer_id: "X",
            created_at: 1,
            updated_at: 1,
          })
          .execute();
        await fresh.store.db
          .updateTable("contacts")
          .set({ customer_id: customerId })
          .where("id", "=", row.id)
          .execute();
        // A second customer with the same external id in the organisation is refused by the store itself.
        await assert.rejects(
          fresh.store.db
            .insertInto("customers")
            .values({
              id: "3f1c2b1e-8a7d-4c1e-9f0a-0123456789ab",
              organization_id: org.id,
              name: "D",
              external_customer_id: "X",
              created_at: 1,
              updated_at: 1,
            })
            .execute(),
        );
        // Deleting the customer row unlinks (ON DELETE SET NULL) rather than deleting the contact.
        await fresh.store.db.deleteFrom("customers").where("id", "=", customerId).execute();
        const unlinked = await fresh.store.db
          .selectFrom("contacts")
          .select("customer_id")
          .where("id", "=", row.id)
          .executeTakeFirstOrThrow();
        assert.equal(unlinked.customer_id, null);
        assert.deepEqual((await fresh.store.migrate()).applied, []);
      } finally {
        await fresh.drop();
      }
    });
  });
}
