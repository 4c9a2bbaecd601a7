import { type Kysely, sql } from "kysely";

/**
 * Maintained contact counts (docs/pagination.md): one row per account with
 * its number of contacts, kept by triggers in the same transaction as every
 * insert, delete or move of a contact — whatever the path (API, batch,
 * import, Meta webhook, merge, cascade) — so a count is exact the moment the
 * change commits. SQLite serialises writers, so one row per account (shard 0)
 * has no contention. The table is filled from the contacts inside one
 * IMMEDIATE transaction with the triggers' creation, so a writer in another
 * process is counted exactly once; every statement is idempotent, so a
 * migration interrupted before it was recorded runs again cleanly.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql.raw("BEGIN IMMEDIATE").execute(db);
  try {
    for (const statement of STATEMENTS) await sql.raw(statement).execute(db);
    await sql.raw("COMMIT").execute(db);
  } catch (error) {
    await sql.raw("ROLLBACK").execute(db);
    throw error;
  }
}

const STATEMENTS = [
  `CREATE TABLE IF NOT EXISTS contact_counts (
     organization_id TEXT NOT NULL,
     account_id TEXT NOT NULL,
     shard INTEGER NOT NULL,
     n INTEGER NOT NULL,
     PRIMARY KEY (organization_id, account_id, shard)
   ) WITHOUT ROWID`,
  `CREATE INDEX IF NOT EXISTS contact_counts_account ON contact_counts (account_id)`,
  `DELETE FROM contact_counts`,
  `INSERT INTO contact_counts (organization_id, account_id, shard, n)
     SELECT organization_id, account_id, 0, count(*) FROM contacts GROUP BY organization_id, account_id`,
  `CREATE TRIGGER IF NOT EXISTS contact_counts_insert AFTER INSERT ON contacts BEGIN
     INSERT INTO contact_counts (organization_id, account_id, shard, n)
       VALUES (NEW.organization_id, NEW.account_id, 0, 1)
       ON CONFLICT (organization_id, account_id, shard) DO UPDATE SET n = n + 1;
   END`,
  `CREATE TRIGGER IF NOT EXISTS contact_counts_delete AFTER DELETE ON contacts BEGIN
     INSERT INTO contact_counts (organization_id, account_id, shard, n)
       VALUES (OLD.organization_id, OLD.account_id, 0, -1)
       ON CONFLICT (organization_id, account_id, shard) DO UPDATE SET n = n - 1;
   END`,
  `CREATE TRIGGER IF NOT EXISTS contact_counts_move AFTER UPDATE OF organization_id, account_id ON contacts
   WHEN OLD.organization_id IS NOT NEW.organization_id OR OLD.account_id IS NOT NEW.account_id BEGIN
     INSERT INTO contact_counts (organization_id, account_id, shard, n)
       VALUES (OLD.organization_id, OLD.account_id, 0, -1)
       ON CONFLICT (organization_id, account_id, shard) DO UPDATE SET n = n - 1;
     INSERT INTO contact_counts (organization_id, account_id, shard, n)
       VALUES (NEW.organization_id, NEW.account_id, 0, 1)
       ON CONFLICT (organization_id, account_id, shard) DO UPDATE SET n = n + 1;
   END`,
  // Rows of a deleted account go with it (reads also join the live accounts,
  // so rows a cascade writes after this are never counted).
  `CREATE TRIGGER IF NOT EXISTS contact_counts_account_gone AFTER DELETE ON accounts BEGIN
     DELETE FROM contact_counts WHERE account_id = OLD.id;
   END`,
];
