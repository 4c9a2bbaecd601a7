/**
 * Named prepared statements on PostgreSQL (DATABASE_PREPARED_STATEMENTS):
 * with the switch on, the key lookups (a contact by id, an API key, an
 * organisation, an identity) are prepared on the connection and answer the
 * same as without; with it off, nothing is prepared (PgBouncer in transaction
 * mode cannot carry a statement from one transaction to the next).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "kysely";
import { loadConfig } from "../../src/config.ts";
import { createAccount } from "../../src/domain/accounts.ts";
import { createContact, getContact } from "../../src/domain/contacts.ts";
import { createApiKey, createOrganization, hashApiKey } from "../../src/domain/organizations.ts";
import { findApiKeyByHash } from "../../src/store/repositories/api-keys.ts";
import { findByIdentity } from "../../src/store/repositories/contacts.ts";
import { findOrganization } from "../../src/store/repositories/organizations.ts";
import { createPostgresStore, type Store } from "../../src/store/store.ts";
import { storeKinds } from "../helpers/env.ts";
import { createTestStore, type TestStore } from "../helpers/harness.ts";

test("DATABASE_PREPARED_STATEMENTS: on by default, true/false, a bad value names the variable", () => {
  assert.equal(loadConfig({}).databasePreparedStatements, true);
  assert.equal(loadConfig({ DATABASE_PREPARED_STATEMENTS: "false" }).databasePreparedStatements, false);
  assert.equal(loadConfig({ DATABASE_PREPARED_STATEMENTS: "off" }).databasePreparedStatements, false);
  assert.equal(loadConfig({ DATABASE_PREPARED_STATEMENTS: "TRUE" }).databasePreparedStatements, true);
  assert.throws(() => loadConfig({ DATABASE_PREPARED_STATEMENTS: "maybe" }), /DATABASE_PREPARED_STATEMENTS/);
});

if (storeKinds().includes("postgres")) {
  describe("named prepared statements [postgres]", () => {
    let ts: TestStore;
    let key: string;
    let orgId: string;
    let contactId: string;
    let accountId: string;
    before(async () => {
      ts = await createTestStore("postgres", { migrated: true });
      await ts.store.migrate();
      orgId = (await createOrganization(ts.store.db, { name: "Prepared Co" })).id;
      key = (await createApiKey(ts.store.db, orgId, {})).key;
      const account = await createAccount(ts.store.db, orgId, {
        phone_number_id: "106540352240001",
        phone_number: "+628111000111",
      });
      accountId = account.id;
      const scope = { db: ts.store.db, organizationId: orgId };
      contactId = (
        await createContact(scope, account, { phone_number: "+6281234500001", display_name: "P" }, "api")
      ).id;
    });
    after(() => ts.drop());

    /** Runs every lookup on one connection (a transaction) and returns what it prepared. */
    async function lookups(store: Store) {
      return store.transaction(async (tx) => {
        const scope = { db: tx, organizationId: orgId };
        const results = [];
        for (let i = 0; i < 2; i++) {
          results.push({
            contact: (await getContact(scope, contactId)).id,
            key: (await findApiKeyByHash(tx, hashApiKey(key)))?.organization_id,
            org: (await findOrganization(tx, orgId))?.id,
            identity: (await findByIdentity(tx, accountId, { phone_number: "+6281234500001" }))?.id,
          });
        }
        const { rows } = await sql<{
          name: string;
        }>`SELECT name FROM pg_prepared_statements WHERE name LIKE 'pb\\_%'`.execute(tx);
        return { results, prepared: rows.map((r) => r.name) };
      });
    }

    test("on: the lookups are prepared once per connection and answer as without", async () => {
      const on = createPostgresStore(ts.env.DATABASE_URL!, { preparedStatements: true });
      const off = createPostgresStore(ts.env.DATABASE_URL!, { preparedStatements: false });
      try {
        const withPrepared = await lookups(on);
        const without = await lookups(off);
        const expected = { contact: contactId, key: orgId, org: orgId, identity: contactId };
        assert.deepEqual(withPrepared.results, [expected, expected]);
        assert.deepEqual(without.results, [expected, expected]);
        assert.equal(withPrepared.prepared.length, 4, `prepared: ${withPrepared.prepared.join(", ")}`);
        assert.deepEqual(without.prepared, [], "nothing is prepared with the switch off");
      } finally {
        await on.close();
        await off.close();
      }
    });
  });
}
