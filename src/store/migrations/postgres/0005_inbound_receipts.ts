import { type Kysely, sql } from "kysely";

/**
 * Receipts of applied Meta webhook changes (spec §6): one row per change that
 * did something, keyed by a digest of its content, written in the same
 * transaction as its effect. A redelivered change finds its receipt and is
 * skipped, even when later events have moved the identity it names.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of STATEMENTS) await sql.raw(statement).execute(db);
}

const STATEMENTS = [
  `CREATE TABLE inbound_receipts (
     digest TEXT COLLATE "C" PRIMARY KEY,
     account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
     received_at BIGINT NOT NULL
   )`,
  `CREATE INDEX inbound_receipts_received ON inbound_receipts (received_at)`,
  `CREATE INDEX inbound_receipts_account ON inbound_receipts (account_id)`,
];
