import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of STATEMENTS) await sql.raw(statement).execute(db);
}

// Ids use COLLATE "C" so that keyset order is byte order, as on SQLite.
const STATEMENTS = [
  `CREATE EXTENSION IF NOT EXISTS pg_trgm`,
  `CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
  `CREATE TABLE organizations (
     id TEXT COLLATE "C" PRIMARY KEY,
     name TEXT NOT NULL,
     read_per_minute INTEGER,
     write_per_minute INTEGER,
     created_at BIGINT NOT NULL,
     updated_at BIGINT NOT NULL
   )`,
  `CREATE TABLE api_keys (
     id TEXT COLLATE "C" PRIMARY KEY,
     organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
     key_hash TEXT NOT NULL UNIQUE,
     last4 TEXT NOT NULL,
     label TEXT,
     expires_at BIGINT,
     revoked_at BIGINT,
     created_at BIGINT NOT NULL
   )`,
  `CREATE INDEX api_keys_organization ON api_keys (organization_id, created_at)`,
  `CREATE TABLE accounts (
     id TEXT COLLATE "C" PRIMARY KEY,
     organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
     phone_number_id TEXT NOT NULL UNIQUE,
     phone_number TEXT NOT NULL,
     name TEXT,
     status TEXT NOT NULL CHECK (status IN ('connected', 'disconnected', 'onboarding')),
     created_at BIGINT NOT NULL,
     updated_at BIGINT NOT NULL
   )`,
  `CREATE INDEX accounts_organization ON accounts (organization_id, created_at, id)`,
  `CREATE TABLE contacts (
     seq BIGSERIAL,
     id TEXT COLLATE "C" PRIMARY KEY,
     organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
     account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
     phone_number TEXT,
     business_scoped_user_id TEXT,
     parent_business_scoped_user_id TEXT,
     username TEXT,
     profile_name TEXT,
     display_name TEXT,
     email TEXT,
     metadata TEXT NOT NULL DEFAULT '{}',
     source TEXT NOT NULL CHECK (source IN ('api', 'import', 'inbound')),
     marketing_opt_out SMALLINT NOT NULL DEFAULT 0,
     marketing_opt_out_at BIGINT,
     search_text TEXT NOT NULL DEFAULT '',
     created_at BIGINT NOT NULL,
     updated_at BIGINT NOT NULL,
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
  `CREATE INDEX contacts_search_trgm ON contacts USING gin (search_text gin_trgm_ops)`,
  `CREATE TABLE labels (
     id TEXT COLLATE "C" PRIMARY KEY,
     organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
     name TEXT NOT NULL,
     name_lower TEXT NOT NULL,
     color TEXT NOT NULL,
     created_at BIGINT NOT NULL,
     updated_at BIGINT NOT NULL
   )`,
  `CREATE UNIQUE INDEX labels_organization_name ON labels (organization_id, name_lower)`,
  `CREATE INDEX labels_organization_created ON labels (organization_id, created_at DESC, id DESC)`,
  `CREATE TABLE contact_labels (
     contact_id TEXT COLLATE "C" NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
     label_id TEXT COLLATE "C" NOT NULL REFERENCES labels(id) ON DELETE CASCADE,
     created_at BIGINT NOT NULL,
     PRIMARY KEY (contact_id, label_id)
   )`,
  `CREATE INDEX contact_labels_label ON contact_labels (label_id, contact_id)`,
];
