import { type Kysely, sql } from "kysely";

/**
 * Maintained contact counts (docs/pagination.md): per account, kept by
 * triggers in the same transaction as every insert, delete or move of a
 * contact — whatever the path (API, batch, import, Meta webhook, merge,
 * cascade) — so a count is exact the moment the change commits.
 *
 * Hot rows: a counter row is locked from its update until the transaction
 * commits, so one row per account would serialise every concurrent write to
 * that account. Each account has up to 16 rows (shards); a statement adds its
 * delta to the shard of its server connection (backend pid mod 16), so
 * concurrent writers on different connections almost never wait for each
 * other. A count is the sum of the account's shards (a shard may be negative:
 * a contact is counted where it was added and uncounted where it was removed).
 * Inserts and deletes are counted per statement from transition tables (a
 * 1,000-row batch is one upsert per account, not 1,000), in a fixed order so
 * two statements never lock shards in opposite orders.
 *
 * Kysely runs PostgreSQL migrations in a transaction: the backfill and the
 * triggers commit together, and CREATE TRIGGER's lock holds off concurrent
 * writers until then, so no contact is counted twice or missed.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of STATEMENTS) await sql.raw(statement).execute(db);
}

const SHARDS = 16;

const apply = (source: string, sign: "" | "-") => `
  INSERT INTO contact_counts (organization_id, account_id, shard, n)
    SELECT organization_id, account_id, pg_backend_pid() % ${SHARDS}, ${sign}count(*)
      FROM ${source} GROUP BY organization_id, account_id ORDER BY organization_id, account_id
    ON CONFLICT (organization_id, account_id, shard) DO UPDATE SET n = contact_counts.n + EXCLUDED.n;`;

const STATEMENTS = [
  `CREATE TABLE contact_counts (
     organization_id TEXT COLLATE "C" NOT NULL,
     account_id TEXT COLLATE "C" NOT NULL,
     shard SMALLINT NOT NULL,
     n BIGINT NOT NULL,
     PRIMARY KEY (organization_id, account_id, shard)
   )`,
  `CREATE INDEX contact_counts_account ON contact_counts (account_id)`,
  `CREATE FUNCTION contact_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN ${apply("counted_new", "")} RETURN NULL; END $$`,
  `CREATE FUNCTION contact_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN ${apply("counted_old", "-")} RETURN NULL; END $$`,
  `CREATE FUNCTION contact_counts_moved() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     INSERT INTO contact_counts (organization_id, account_id, shard, n)
       VALUES (OLD.organization_id, OLD.account_id, pg_backend_pid() % ${SHARDS}, -1)
       ON CONFLICT (organization_id, account_id, shard) DO UPDATE SET n = contact_counts.n - 1;
     INSERT INTO contact_counts (organization_id, account_id, shard, n)
       VALUES (NEW.organization_id, NEW.account_id, pg_backend_pid() % ${SHARDS}, 1)
       ON CONFLICT (organization_id, account_id, shard) DO UPDATE SET n = contact_counts.n + 1;
     RETURN NULL;
   END $$`,
  `CREATE FUNCTION contact_counts_account_gone() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN DELETE FROM contact_counts WHERE account_id = OLD.id; RETURN NULL; END $$`,
  `CREATE TRIGGER contact_counts_insert AFTER INSERT ON contacts
     REFERENCING NEW TABLE AS counted_new FOR EACH STATEMENT EXECUTE FUNCTION contact_counts_inserted()`,
  `CREATE TRIGGER contact_counts_delete AFTER DELETE ON contacts
     REFERENCING OLD TABLE AS counted_old FOR EACH STATEMENT EXECUTE FUNCTION contact_counts_deleted()`,
  `CREATE TRIGGER contact_counts_move AFTER UPDATE OF organization_id, account_id ON contacts
     FOR EACH ROW WHEN (OLD.organization_id IS DISTINCT FROM NEW.organization_id
                        OR OLD.account_id IS DISTINCT FROM NEW.account_id)
     EXECUTE FUNCTION contact_counts_moved()`,
  `CREATE TRIGGER contact_counts_account_gone AFTER DELETE ON accounts
     FOR EACH ROW EXECUTE FUNCTION contact_counts_account_gone()`,
  `INSERT INTO contact_counts (organization_id, account_id, shard, n)
     SELECT organization_id, account_id, 0, count(*) FROM contacts GROUP BY organization_id, account_id`,
];
