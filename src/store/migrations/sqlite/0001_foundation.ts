import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of STATEMENTS) await sql.raw(statement).execute(db);
}

const STATEMENTS = [
  `CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID`,
  `CREATE TABLE organizations (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     read_per_minute INTEGER,
     write_per_minute INTEGER,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   )`,
  `CREATE TABLE api_keys (
     id TEXT PRIMARY KEY,
     organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
     key_hash TEXT NOT NULL UNIQUE,
     last4 TEXT NOT NULL,
     label TEXT,
     expires_at INTEGER,
     revoked_at INTEGER,
     created_at INTEGER NOT NULL
   )`,
  `CREATE INDEX api_keys_organization ON api_keys (organization_id, created_at)`,
  `CREATE TABLE accounts (
     id TEXT PRIMARY KEY,
     organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
     phone_number_id TEXT NOT NULL UNIQUE,
     phone_number TEXT NOT NULL,
     name TEXT,
     status TEXT NOT NULL CHECK (status IN ('connected', 'disconnected', 'onboarding')),
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   )`,
  `CREATE INDEX accounts_organization ON accounts (organization_id, created_at, id)`,
  `CREATE TABLE contacts (
     seq INTEGER PRIMARY KEY,
     id TEXT NOT NULL UNIQUE,
     organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
     account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
     phone_number TEXT,
     business_scoped_user_id TEXT,
     parent_business_scoped_user_id TEXT,
     username TEXT,
     profile_name TEXT,
     display_name TEXT,
     email TEXT,
     metadata TEXT NOT NULL DEFAULT '{}',
     source TEXT NOT NULL CHECK (source IN ('api', 'import', 'inbound')),
     marketing_opt_out INTEGER NOT NULL DEFAULT 0,
     marketing_opt_out_at INTEGER,
     search_text TEXT NOT NULL DEFAULT '',
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     CHECK (phone_number IS NOT NULL OR business_scoped_user_id IS NOT NULL)
   )`,
  `CREATE UNIQUE INDEX contacts_account_phone ON contacts (account_id, phone_number) WHERE phone_number IS NOT NULL`,
  `CREATE UNIQUE INDEX contacts_account_bsuid ON contacts (account_id, business_scoped_user_id)
     WHERE business_scoped_user_id IS NOT NULL`,
  `CREATE INDEX contacts_organization_created ON contacts (organization_id, created_at DESC, id DESC)`,
  `CREATE INDEX contacts_account_created ON contacts (account_id, created_at DESC, id DESC)`,
  `CREATE INDEX contacts_organization_phone ON contacts (organization_id, phone_number)`,
  `CREATE INDEX contacts_organization_updated ON contacts (organization_id, updated_at)`,
  `CREATE INDEX contacts_parent_bsuid ON contacts (account_id, parent_business_scoped_user_id)
     WHERE parent_business_scoped_user_id IS NOT NULL`,
  // Substring search: an external-content FTS5 table with the trigram tokenizer,
  // kept in step with contacts.search_text by triggers.
  `CREATE VIRTUAL TABLE contacts_fts USING fts5(
     search_text, content='contacts', content_rowid='seq', tokenize='trigram'
   )`,
  `CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN
     INSERT INTO contacts_fts (rowid, search_text) VALUES (new.seq, new.search_text);
   END`,
  `CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN
     INSERT INTO contacts_fts (contacts_fts, rowid, search_text) VALUES ('delete', old.seq, old.search_text);
   END`,
  `CREATE TRIGGER contacts_fts_update AFTER UPDATE OF search_text ON contacts BEGIN
     INSERT INTO contacts_fts (contacts_fts, rowid, search_text) VALUES ('delete', old.seq, old.search_text);
     INSERT INTO contacts_fts (rowid, search_text) VALUES (new.seq, new.search_text);
   END`,
  `CREATE TABLE labels (
     id TEXT PRIMARY KEY,
     organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
     name TEXT NOT NULL,
     name_lower TEXT NOT NULL,
     color TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   )`,
  `CREATE UNIQUE INDEX labels_organization_name ON labels (organization_id, name_lower)`,
  `CREATE INDEX labels_organization_created ON labels (organization_id, created_at DESC, id DESC)`,
  `CREATE TABLE contact_labels (
     contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
     label_id TEXT NOT NULL REFERENCES labels(id) ON DELETE CASCADE,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (contact_id, label_id)
   ) WITHOUT ROWID`,
  `CREATE INDEX contact_labels_label ON contact_labels (label_id, contact_id)`,
];
