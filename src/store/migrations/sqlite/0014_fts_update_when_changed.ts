import type { Kysely } from "kysely";
import { inImmediateTransaction } from "./immediate.ts";

/**
 * The trigram index is rewritten for a contact only when its search text
 * changed. `AFTER UPDATE OF search_text` fires whenever the column is in the
 * UPDATE's SET list, and every upsert (batch, import, Meta ingestion) sets
 * it: a metadata-only change deleted and re-inserted the contact's index
 * entries, a new FTS5 segment per transaction, which the search index's
 * merges then had to rewrite (at 1,000 updates/s on 1M contacts the server
 * fell to a few requests a second). Same trigger, with a WHEN.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await inImmediateTransaction(db, [
    "DROP TRIGGER IF EXISTS contacts_fts_update",
    `CREATE TRIGGER contacts_fts_update AFTER UPDATE OF search_text ON contacts
     WHEN old.search_text IS NOT new.search_text BEGIN
       INSERT INTO contacts_fts (contacts_fts, rowid, search_text) VALUES ('delete', old.seq, old.search_text);
       INSERT INTO contacts_fts (rowid, search_text) VALUES (new.seq, new.search_text);
     END`,
  ]);
}
