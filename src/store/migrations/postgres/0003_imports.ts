import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of STATEMENTS) await sql.raw(statement).execute(db);
}

// File imports (docs/imports-and-export.md). The uploaded file is kept in the
// store as chunks, so an import survives a restart and any process can run it.
const STATEMENTS = [
  `CREATE TABLE imports (
     id TEXT COLLATE "C" PRIMARY KEY,
     organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
     account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
     format TEXT NOT NULL CHECK (format IN ('csv', 'ndjson')),
     mode TEXT NOT NULL CHECK (mode IN ('create', 'upsert')),
     status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed')),
     size_bytes BIGINT NOT NULL,
     chunk_count INTEGER NOT NULL,
     total_rows INTEGER NOT NULL,
     processed_rows INTEGER NOT NULL DEFAULT 0,
     created INTEGER NOT NULL DEFAULT 0,
     updated INTEGER NOT NULL DEFAULT 0,
     unchanged INTEGER NOT NULL DEFAULT 0,
     failed_rows INTEGER NOT NULL DEFAULT 0,
     failure TEXT,
     attempts INTEGER NOT NULL DEFAULT 0,
     lease_owner TEXT,
     lease_until BIGINT,
     created_at BIGINT NOT NULL,
     updated_at BIGINT NOT NULL,
     started_at BIGINT,
     completed_at BIGINT
   )`,
  `CREATE INDEX imports_organization_created ON imports (organization_id, created_at DESC, id DESC)`,
  `CREATE INDEX imports_pending ON imports (status, created_at) WHERE status IN ('queued', 'running')`,
  `CREATE TABLE import_chunks (
     upload_id TEXT COLLATE "C" NOT NULL,
     seq INTEGER NOT NULL,
     data BYTEA NOT NULL,
     created_at BIGINT NOT NULL,
     PRIMARY KEY (upload_id, seq)
   )`,
  `CREATE INDEX import_chunks_created ON import_chunks (created_at)`,
  `CREATE TABLE import_errors (
     import_id TEXT COLLATE "C" NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
     row_no INTEGER NOT NULL,
     line INTEGER NOT NULL,
     code TEXT NOT NULL,
     message TEXT NOT NULL,
     param TEXT,
     PRIMARY KEY (import_id, row_no)
   )`,
  `CREATE TABLE import_created (
     import_id TEXT COLLATE "C" NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
     contact_id TEXT COLLATE "C" NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
     PRIMARY KEY (import_id, contact_id)
   )`,
  `CREATE INDEX import_created_contact ON import_created (contact_id)`,
];
