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
     organization_id TEXT COLLATE "C" PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
     last_seq BIGINT NOT NULL
   )`,
  `CREATE TABLE events (
     id TEXT COLLATE "C" PRIMARY KEY,
     organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
     seq BIGINT NOT NULL,
     type TEXT NOT NULL,
     contact_id TEXT COLLATE "C",
     data TEXT NOT NULL,
     created_at BIGINT NOT NULL
   )`,
  `CREATE UNIQUE INDEX events_org_seq ON events (organization_id, seq)`,
  `CREATE INDEX events_created ON events (created_at)`,
  `CREATE TABLE webhook_subscriptions (
     id TEXT COLLATE "C" PRIMARY KEY,
     organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
     url TEXT NOT NULL,
     description TEXT,
     events TEXT NOT NULL,
     include_import_contacts SMALLINT NOT NULL DEFAULT 0,
     enabled SMALLINT NOT NULL DEFAULT 1,
     secret TEXT NOT NULL,
     previous_secret TEXT,
     previous_secret_expires_at BIGINT,
     failing_since BIGINT,
     disabled_at BIGINT,
     disabled_reason TEXT,
     created_at BIGINT NOT NULL,
     updated_at BIGINT NOT NULL
   )`,
  `CREATE INDEX webhook_subscriptions_org ON webhook_subscriptions (organization_id, created_at)`,
  `CREATE TABLE webhook_deliveries (
     id TEXT COLLATE "C" PRIMARY KEY,
     organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
     subscription_id TEXT COLLATE "C" NOT NULL REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
     event_id TEXT COLLATE "C" NOT NULL,
     event_seq BIGINT NOT NULL,
     event_type TEXT NOT NULL,
     ordering_key TEXT COLLATE "C" NOT NULL,
     status TEXT NOT NULL,
     attempts BIGINT NOT NULL DEFAULT 0,
     next_attempt_at BIGINT NOT NULL,
     lease_owner TEXT,
     lease_until BIGINT,
     last_status_code BIGINT,
     last_error TEXT,
     replay_of TEXT COLLATE "C",
     created_at BIGINT NOT NULL,
     updated_at BIGINT NOT NULL,
     completed_at BIGINT
   )`,
  `CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending'`,
  `CREATE INDEX webhook_deliveries_chain ON webhook_deliveries (subscription_id, ordering_key, event_seq) WHERE status = 'pending'`,
  `CREATE INDEX webhook_deliveries_org ON webhook_deliveries (organization_id, created_at, id)`,
  `CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id)`,
  `CREATE TABLE webhook_attempts (
     delivery_id TEXT COLLATE "C" NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
     attempt BIGINT NOT NULL,
     started_at BIGINT NOT NULL,
     duration_ms BIGINT NOT NULL,
     status_code BIGINT,
     error TEXT,
     response_body TEXT,
     PRIMARY KEY (delivery_id, attempt)
   )`,
];
