import { type Kysely, sql } from "kysely";

/**
 * Outbound webhooks (spec §7): the outbox of events, written in the same
 * transaction as the change, ordered per organisation by a counter taken in
 * that transaction; endpoints; one delivery row per event and endpoint, with
 * its attempts.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of STATEMENTS) await sql.raw(statement).execute(db);
}

const STATEMENTS = [
  `CREATE TABLE event_sequences (
     organization_id TEXT PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
     last_seq INTEGER NOT NULL
   ) WITHOUT ROWID`,
  `CREATE TABLE events (
     id TEXT PRIMARY KEY,
     organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
     seq INTEGER NOT NULL,
     type TEXT NOT NULL,
     contact_id TEXT,
     data TEXT NOT NULL,
     created_at INTEGER NOT NULL
   ) WITHOUT ROWID`,
  `CREATE UNIQUE INDEX events_org_seq ON events (organization_id, seq)`,
  `CREATE INDEX events_created ON events (created_at)`,
  `CREATE TABLE webhook_subscriptions (
     id TEXT PRIMARY KEY,
     organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
     url TEXT NOT NULL,
     description TEXT,
     events TEXT NOT NULL,
     include_import_contacts INTEGER NOT NULL DEFAULT 0,
     enabled INTEGER NOT NULL DEFAULT 1,
     secret TEXT NOT NULL,
     previous_secret TEXT,
     previous_secret_expires_at INTEGER,
     failing_since INTEGER,
     disabled_at INTEGER,
     disabled_reason TEXT,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   ) WITHOUT ROWID`,
  `CREATE INDEX webhook_subscriptions_org ON webhook_subscriptions (organization_id, created_at)`,
  `CREATE TABLE webhook_deliveries (
     id TEXT PRIMARY KEY,
     organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
     subscription_id TEXT NOT NULL REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
     event_id TEXT NOT NULL,
     event_seq INTEGER NOT NULL,
     event_type TEXT NOT NULL,
     ordering_key TEXT NOT NULL,
     status TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL,
     lease_owner TEXT,
     lease_until INTEGER,
     last_status_code INTEGER,
     last_error TEXT,
     replay_of TEXT,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     completed_at INTEGER
   ) WITHOUT ROWID`,
  `CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending'`,
  `CREATE INDEX webhook_deliveries_chain ON webhook_deliveries (subscription_id, ordering_key, event_seq) WHERE status = 'pending'`,
  `CREATE INDEX webhook_deliveries_org ON webhook_deliveries (organization_id, created_at, id)`,
  `CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id)`,
  `CREATE TABLE webhook_attempts (
     delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
     attempt INTEGER NOT NULL,
     started_at INTEGER NOT NULL,
     duration_ms INTEGER NOT NULL,
     status_code INTEGER,
     error TEXT,
     response_body TEXT,
     PRIMARY KEY (delivery_id, attempt)
   ) WITHOUT ROWID`,
];
