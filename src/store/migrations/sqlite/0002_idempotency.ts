import { type Kysely, sql } from "kysely";

/**
 * Idempotency records (spec §2): one row per (organisation, key), written in
 * the same transaction as the write it guards, so a committed row always
 * carries the finished response.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of STATEMENTS) await sql.raw(statement).execute(db);
}

const STATEMENTS = [
  `CREATE TABLE idempotency_keys (
     organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
     idempotency_key TEXT NOT NULL,
     fingerprint TEXT NOT NULL,
     request_id TEXT NOT NULL,
     kind TEXT CHECK (kind IN ('response', 'error')),
     status INTEGER,
     headers TEXT,
     body TEXT,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     PRIMARY KEY (organization_id, idempotency_key)
   ) WITHOUT ROWID`,
  `CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at)`,
];
