import { type Kysely, sql } from "kysely";

/**
 * Identity history of a contact: every phone number or BSUID change Meta
 * reported (`user_changed_number`, `user_changed_user_id`), written in the
 * transaction that moved the identity, so the dashboard and API clients can
 * show how a person's identity changed. Deleted with its contact.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of STATEMENTS) await sql.raw(statement).execute(db);
}

const STATEMENTS = [
  `CREATE TABLE contact_identity_changes (
     id TEXT PRIMARY KEY,
     contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
     kind TEXT NOT NULL,
     previous_phone_number TEXT,
     phone_number TEXT,
     previous_business_scoped_user_id TEXT,
     business_scoped_user_id TEXT,
     created_at INTEGER NOT NULL
   ) WITHOUT ROWID`,
  `CREATE INDEX contact_identity_changes_contact ON contact_identity_changes (contact_id, created_at, id)`,
];
