/**
 * The duplicate-pair trigger finds a contact's candidates through indexes,
 * never by scanning the organisation's contacts (docs/merge.md): on SQLite,
 * the plan of its matching query searches an index in every branch, with
 * no statistics (as on a fresh install).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import SqliteDatabase from "better-sqlite3";
import { DUPLICATE_MATCHES } from "../../src/store/migrations/sqlite/0008_merges.ts";
import { createTestStore } from "../helpers/harness.ts";

test("SQLite: every branch of the duplicate match searches an index", async () => {
  const t = await createTestStore("sqlite");
  try {
    await t.store.migrate();
    const db = new SqliteDatabase(join(t.env.DATA_DIR!, "phonebook.db"));
    try {
      const query = DUPLICATE_MATCHES.replace(/new\.(\w+)/g, "@$1");
      const plan = db.prepare(`EXPLAIN QUERY PLAN ${query}`).all({
        email: "a@x.io",
        organization_id: "org_1",
        phone_number: "+628111",
        business_scoped_user_id: "ID.1",
        parent_business_scoped_user_id: "P.1",
        display_name: "Ana",
        profile_name: null,
      }) as Array<{ detail: string }>;
      const reads = plan.map((row) => row.detail).filter((d) => /\b(SCAN|SEARCH) contacts\b/.test(d));
      assert.equal(reads.length, 5, JSON.stringify(plan));
      for (const detail of reads) assert.match(detail, /^SEARCH contacts USING (COVERING )?INDEX/, detail);
      assert.ok(reads.some((d) => d.includes("contacts_organization_email")));
      assert.ok(reads.some((d) => d.includes("contacts_organization_name_tail")));
    } finally {
      db.close();
    }
  } finally {
    await t.drop();
  }
});
