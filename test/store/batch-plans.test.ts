/**
 * SQLite plans of the statements an import batch runs for a whole batch of
 * contacts at once. Without statistics (an installation never runs ANALYZE),
 * the planner's choice depends on the length of an IN list, not on the data:
 * from a few hundred ids up it preferred walking the whole organisation over
 * looking the ids up (4 s per 500-row batch at 1M contacts).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import SqliteDatabase from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";
import { createAccount } from "../../src/domain/accounts.ts";
import { buildRow, normalizeInput } from "../../src/domain/contacts.ts";
import { createOrganization } from "../../src/domain/organizations.ts";
import { insertContactRows } from "../../src/store/repositories/bulk-insert.ts";
import { findContactViews } from "../../src/store/repositories/contacts.ts";
import { lockContacts, survivorsOf } from "../../src/store/repositories/merges.ts";
import type { Database } from "../../src/store/schema.ts";
import { createTestStore, type TestStore } from "../helpers/harness.ts";

describe("batch statement plans [sqlite]", () => {
  let t: TestStore;
  let orgId: string;
  const ids: string[] = [];

  before(async () => {
    t = await createTestStore("sqlite");
    await t.store.migrate();
    orgId = (await createOrganization(t.store.db, { name: "Batch plans" })).id;
    const account = await createAccount(t.store.db, orgId, {
      phone_number_id: "710000000101",
      phone_number: "+6281100000301",
    });
    const rows = Array.from({ length: 600 }, (_, i) =>
      buildRow(
        orgId,
        account.id,
        normalizeInput({ phone_number: `+62812${String(3000000 + i)}`, display_name: `Plan ${i}` }),
        "import",
        Date.now(),
      ),
    );
    await t.store.transaction((tx) => insertContactRows(tx, rows));
    ids.push(...rows.map((r) => r.id));
  });
  after(async () => {
    await t.drop();
  });

  test("the views of 500 contacts (an import batch's events) are looked up by id, not by walking the organisation", async () => {
    const captured: Array<{ sql: string; parameters: readonly unknown[] }> = [];
    const raw = new SqliteDatabase(`${t.env.DATA_DIR!}/phonebook.db`, { readonly: true });
    const logged = new Kysely<Database>({
      dialect: new SqliteDialect({ database: raw }),
      log: (event) => {
        if (event.level === "query") captured.push(event.query);
      },
    });
    try {
      await findContactViews(logged, orgId, ids.slice(0, 500));
      const views = await findContactViews(t.store.db, orgId, ids.slice(0, 500));
      assert.equal(views.length, 500);
      assert.deepEqual(new Set(views.map((v) => v.id)), new Set(ids.slice(0, 500)));
      const plan = (
        raw.prepare(`EXPLAIN QUERY PLAN ${captured[0]!.sql}`).all(...captured[0]!.parameters) as Array<{
          detail: string;
        }>
      )
        .map((r) => r.detail)
        .join("\n");
      assert.match(plan, /SEARCH contacts USING INDEX sqlite_autoindex_contacts_1 \(id=\?\)/);
      assert.doesNotMatch(plan, /contacts_organization_/);
      // Another organisation's contacts are not returned, whatever the ids.
      assert.deepEqual(await findContactViews(t.store.db, "org_00000000000000000000000000", ids), []);
    } finally {
      await logged.destroy();
    }
  });

  test("a merge's contacts and a batch's merged-away ids are looked up by id, from two ids up", async () => {
    const raw = new SqliteDatabase(`${t.env.DATA_DIR!}/phonebook.db`, { readonly: true });
    const captured: Array<{ sql: string; parameters: readonly unknown[] }> = [];
    const logged = new Kysely<Database>({
      dialect: new SqliteDialect({ database: raw }),
      log: (event) => {
        if (event.level === "query") captured.push(event.query);
      },
    });
    const planOf = (query: { sql: string; parameters: readonly unknown[] }) =>
      (raw.prepare(`EXPLAIN QUERY PLAN ${query.sql}`).all(...query.parameters) as Array<{ detail: string }>)
        .map((r) => r.detail)
        .join("\n");
    try {
      // A merge of two (a batch's check of 100 ids at 1M contacts walked 950,000 index entries: 320 ms).
      assert.equal((await lockContacts(logged, orgId, ids.slice(0, 2))).size, 2);
      assert.equal((await survivorsOf(logged, orgId, ids.slice(0, 100))).size, 0);
      assert.equal(captured.length, 2);
      for (const query of captured) {
        const plan = planOf(query);
        assert.match(plan, /sqlite_autoindex_contacts_1 \(id=\?\)/, query.sql);
        assert.doesNotMatch(plan, /contacts_organization_/, query.sql);
      }
      assert.equal(
        (await lockContacts(t.store.db, "org_00000000000000000000000000", ids.slice(0, 2))).size,
        0,
      );
    } finally {
      await logged.destroy();
    }
  });
});
