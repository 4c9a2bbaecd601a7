import type { Kysely } from "kysely";
import { inImmediateTransaction } from "./immediate.ts";

/**
 * Where in the rowid order each creation time lies (docs/search.md, "The
 * trigram fallback"): one row per block of 4,096 contact rowids (`seq >> 12`)
 * with the lowest and highest `created_at` any row of the block has had. The
 * search fallback reads trigram hits in rowid order (rowids follow creation
 * time) and stops once these bounds prove that no unread hit can come before
 * the page it has; they are only ever widened (a deleted row leaves them as
 * they were), so they stay true bounds whatever the order rows arrive in
 * (backdated rows, merges that move `created_at`). Kept by triggers in the
 * same transaction as every insert and every change of `created_at`; filled
 * inside one IMMEDIATE transaction with the triggers' creation, as 0006 does.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await inImmediateTransaction(db, STATEMENTS);
}

const WIDEN = `ON CONFLICT (block) DO UPDATE SET
       min_created_at = min(min_created_at, excluded.min_created_at),
       max_created_at = max(max_created_at, excluded.max_created_at)
     WHERE excluded.min_created_at < min_created_at OR excluded.max_created_at > max_created_at`;

const STATEMENTS = [
  `CREATE TABLE IF NOT EXISTS contact_seq_blocks (
     block INTEGER PRIMARY KEY,
     min_created_at INTEGER NOT NULL,
     max_created_at INTEGER NOT NULL
   )`,
  `CREATE INDEX IF NOT EXISTS contact_seq_blocks_max ON contact_seq_blocks (max_created_at)`,
  `CREATE INDEX IF NOT EXISTS contact_seq_blocks_min ON contact_seq_blocks (min_created_at)`,
  `DELETE FROM contact_seq_blocks`,
  `INSERT INTO contact_seq_blocks (block, min_created_at, max_created_at)
     SELECT seq >> 12, min(created_at), max(created_at) FROM contacts GROUP BY seq >> 12`,
  `CREATE TRIGGER IF NOT EXISTS contact_seq_blocks_insert AFTER INSERT ON contacts BEGIN
     INSERT INTO contact_seq_blocks (block, min_created_at, max_created_at)
       VALUES (NEW.seq >> 12, NEW.created_at, NEW.created_at)
     ${WIDEN};
   END`,
  `CREATE TRIGGER IF NOT EXISTS contact_seq_blocks_update AFTER UPDATE OF created_at ON contacts
   WHEN NEW.created_at IS NOT OLD.created_at BEGIN
     INSERT INTO contact_seq_blocks (block, min_created_at, max_created_at)
       VALUES (NEW.seq >> 12, NEW.created_at, NEW.created_at)
     ${WIDEN};
   END`,
];
