import { sql } from "kysely";
import type {
  DeliveryStatus,
  EventsTable,
  WebhookAttemptsTable,
  WebhookDeliveriesTable,
  WebhookSubscriptionsTable,
} from "../schema.ts";
import { dialectOf, type Executor } from "../store.ts";

export type EventRow = EventsTable;
export type SubscriptionRow = WebhookSubscriptionsTable;
export type DeliveryRow = WebhookDeliveriesTable;
export type AttemptRow = WebhookAttemptsTable;

// ---------------------------------------------------------------- events

/**
 * Takes `count` numbers of the organisation's event sequence and returns the
 * last. The counter row stays locked until the transaction ends, so events of
 * one organisation commit in sequence order: a reader never sees N+1 without N
 * (a database sequence would hand out numbers that commit out of order).
 */
export async function takeSequence(db: Executor, organizationId: string, count: number): Promise<number> {
  const row = await db
    .insertInto("event_sequences")
    .values({ organization_id: organizationId, last_seq: count })
    .onConflict((oc) =>
      oc.column("organization_id").doUpdateSet({ last_seq: sql`event_sequences.last_seq + ${count}` }),
    )
    .returning("last_seq")
    .executeTakeFirstOrThrow();
  return Number(row.last_seq);
}

/** Rows per INSERT: 18 columns × 1,000 stays under both dialects' parameter limits. */
const INSERT_CHUNK = 1000;

export async function insertEvents(db: Executor, rows: EventRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    await db
      .insertInto("events")
      .values(rows.slice(i, i + INSERT_CHUNK))
      .execute();
  }
}

export async function findEvent(
  db: Executor,
  organizationId: string,
  id: string,
): Promise<EventRow | undefined> {
  return db
    .selectFrom("events")
    .selectAll()
    .where("organization_id", "=", organizationId)
    .where("id", "=", id)
    .executeTakeFirst();
}

export interface EventListQuery {
  organizationId: string;
  type?: string | undefined;
  /** Ascending from this sequence number (exclusive); otherwise newest first. */
  afterSeq?: number | undefined;
  /** Descending: strictly below this sequence number. */
  beforeSeq?: number | undefined;
  since?: number | undefined;
  until?: number | undefined;
  limit: number;
}

export async function listEvents(db: Executor, q: EventListQuery): Promise<EventRow[]> {
  let query = db.selectFrom("events").selectAll().where("organization_id", "=", q.organizationId);
  if (q.type !== undefined) query = query.where("type", "=", q.type);
  if (q.since !== undefined) query = query.where("created_at", ">=", q.since);
  if (q.until !== undefined) query = query.where("created_at", "<", q.until);
  if (q.afterSeq !== undefined) {
    return query.where("seq", ">", q.afterSeq).orderBy("seq", "asc").limit(q.limit).execute();
  }
  if (q.beforeSeq !== undefined) query = query.where("seq", "<", q.beforeSeq);
  return query.orderBy("seq", "desc").limit(q.limit).execute();
}

// --------------------------------------------------------- subscriptions

export async function insertSubscription(db: Executor, row: SubscriptionRow): Promise<void> {
  await db.insertInto("webhook_subscriptions").values(row).execute();
}

export async function countSubscriptions(db: Executor, organizationId: string): Promise<number> {
  const row = await db
    .selectFrom("webhook_subscriptions")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("organization_id", "=", organizationId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function findSubscription(
  db: Executor,
  organizationId: string,
  id: string,
): Promise<SubscriptionRow | undefined> {
  return db
    .selectFrom("webhook_subscriptions")
    .selectAll()
    .where("organization_id", "=", organizationId)
    .where("id", "=", id)
    .executeTakeFirst();
}

export async function findSubscriptionById(db: Executor, id: string): Promise<SubscriptionRow | undefined> {
  return db.selectFrom("webhook_subscriptions").selectAll().where("id", "=", id).executeTakeFirst();
}

/** Enabled endpoints of an organisation, for the fan-out of a new event. */
export async function enabledSubscriptions(
  db: Executor,
  organizationId: string,
): Promise<Array<Pick<SubscriptionRow, "id" | "events" | "include_import_contacts">>> {
  return db
    .selectFrom("webhook_subscriptions")
    .select(["id", "events", "include_import_contacts"])
    .where("organization_id", "=", organizationId)
    .where("enabled", "=", 1)
    .execute();
}

export async function listSubscriptions(
  db: Executor,
  organizationId: string,
  after: { created_at: number; id: string } | undefined,
  limit: number,
): Promise<SubscriptionRow[]> {
  let query = db
    .selectFrom("webhook_subscriptions")
    .selectAll()
    .where("organization_id", "=", organizationId);
  if (after) {
    query = query.where((eb) =>
      eb.or([
        eb("created_at", "<", after.created_at),
        eb.and([eb("created_at", "=", after.created_at), eb("id", "<", after.id)]),
      ]),
    );
  }
  return query.orderBy("created_at", "desc").orderBy("id", "desc").limit(limit).execute();
}

export async function updateSubscription(
  db: Executor,
  id: string,
  patch: Partial<SubscriptionRow>,
): Promise<void> {
  if (Object.keys(patch).length === 0) return;
  await db.updateTable("webhook_subscriptions").set(patch).where("id", "=", id).execute();
}

export async function deleteSubscription(db: Executor, organizationId: string, id: string): Promise<boolean> {
  const result = await db
    .deleteFrom("webhook_subscriptions")
    .where("organization_id", "=", organizationId)
    .where("id", "=", id)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

// ------------------------------------------------------------ deliveries

/**
 * Inserts deliveries. On PostgreSQL, pending ones also wake the workers of
 * every process (NOTIFY, delivered when the transaction commits).
 */
export async function insertDeliveries(db: Executor, rows: DeliveryRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    await db
      .insertInto("webhook_deliveries")
      .values(rows.slice(i, i + INSERT_CHUNK))
      .execute();
  }
  if (dialectOf(db) === "postgres" && rows.some((r) => r.status === "pending")) {
    await sql`SELECT pg_notify(${DELIVERIES_CHANNEL}, '')`.execute(db);
  }
}

/** A claimed delivery with what sending it needs. */
export interface ClaimedDelivery extends DeliveryRow {
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: number | null;
  event_data: string;
  event_created_at: number;
}

/**
 * Claims up to `limit` due deliveries for `owner` until `leaseUntil`. Only the
 * head of each chain (endpoint + ordering key) is due: a delivery waits while
 * an earlier one of its chain is pending (retrying, or in flight under
 * another lease). On PostgreSQL, concurrent workers skip each other's rows
 * (FOR UPDATE SKIP LOCKED); on SQLite the transaction is the only writer.
 *
 * Ordered by `next_attempt_at` alone, the order of the partial index of
 * pending deliveries, so a claim reads that index from its start and stops
 * after `limit` heads. (A second sort key made SQLite sort every delivery of
 * a tie — all deliveries one transaction queued — on each claim.) Order
 * within a chain is kept by the NOT EXISTS, not by the sort.
 */
export async function claimDeliveries(
  db: Executor,
  owner: string,
  at: number,
  leaseUntil: number,
  limit: number,
): Promise<string[]> {
  const dialect = dialectOf(db);
  const lock = dialect === "postgres" ? sql`FOR UPDATE OF d SKIP LOCKED` : sql``;
  // PostgreSQL without statistics on webhook_deliveries (a new installation,
  // or a backlog grown since autovacuum last analysed the table) drove this
  // from the subscription through the chain index and read every pending
  // delivery of it, then sorted them: 64 ms per claim at a backlog of 20,000,
  // and the worker delivered 809 events/s. With sorting off for this
  // statement, only the due index gives the order: it reads as far as the
  // first `limit` claimable deliveries (0.24 ms), as the analysed plan does.
  // (SET LOCAL lasts until the transaction ends, so it is set back after.)
  if (dialect === "postgres") await sql`SET LOCAL enable_sort = off`.execute(db);
  const due = await sql<{ id: string }>`
    SELECT d.id FROM webhook_deliveries d
    JOIN webhook_subscriptions s ON s.id = d.subscription_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= ${at}
      AND (d.lease_until IS NULL OR d.lease_until < ${at})
      AND s.enabled = 1
      AND NOT EXISTS (
        SELECT 1 FROM webhook_deliveries p
        WHERE p.subscription_id = d.subscription_id AND p.ordering_key = d.ordering_key
          AND p.status = 'pending' AND p.event_seq < d.event_seq
      )
    ORDER BY d.next_attempt_at
    LIMIT ${limit}
    ${lock}`.execute(db);
  if (dialect === "postgres") await sql`SET LOCAL enable_sort = on`.execute(db);
  const ids = due.rows.map((r) => r.id);
  if (ids.length === 0) return [];
  await db
    .updateTable("webhook_deliveries")
    .set({ lease_owner: owner, lease_until: leaseUntil })
    .where("id", "in", ids)
    .execute();
  return ids;
}

/**
 * Records successful attempts of deliveries this owner holds, in a few
 * set-based statements (one UPDATE per status code, one multi-row INSERT of
 * attempts): at a thousand deliveries a second, a transaction per delivery
 * would queue behind the API's own writes. Returns the ids recorded (a
 * delivery whose lease was lost meanwhile is not).
 */
export async function completeHeldDeliveries(
  db: Executor,
  owner: string,
  at: number,
  done: Array<{ id: string; statusCode: number; attempt: AttemptRow }>,
): Promise<Set<string>> {
  const recorded = new Set<string>();
  const byStatus = new Map<number, string[]>();
  for (const d of done) {
    const ids = byStatus.get(d.statusCode) ?? [];
    ids.push(d.id);
    byStatus.set(d.statusCode, ids);
  }
  for (const [statusCode, ids] of byStatus) {
    for (let i = 0; i < ids.length; i += INSERT_CHUNK) {
      const rows = await db
        .updateTable("webhook_deliveries")
        .set((eb) => ({
          status: "succeeded",
          attempts: eb("attempts", "+", 1),
          lease_owner: null,
          lease_until: null,
          last_status_code: statusCode,
          last_error: null,
          updated_at: at,
          completed_at: at,
        }))
        .where("id", "in", ids.slice(i, i + INSERT_CHUNK))
        .where("lease_owner", "=", owner)
        .where("status", "=", "pending")
        .returning("id")
        .execute();
      for (const row of rows) recorded.add(row.id);
    }
  }
  const attempts = done.filter((d) => recorded.has(d.id)).map((d) => d.attempt);
  for (let i = 0; i < attempts.length; i += INSERT_CHUNK / 2) {
    await db
      .insertInto("webhook_attempts")
      .values(attempts.slice(i, i + INSERT_CHUNK / 2))
      .onConflict((oc) => oc.columns(["delivery_id", "attempt"]).doNothing())
      .execute();
  }
  return recorded;
}

/** An endpoint that answered 2xx is no longer failing. */
export async function clearFailing(db: Executor, subscriptionIds: string[]): Promise<void> {
  if (subscriptionIds.length === 0) return;
  await db
    .updateTable("webhook_subscriptions")
    .set({ failing_since: null })
    .where("id", "in", subscriptionIds)
    .where("failing_since", "is not", null)
    .execute();
}

/** The LISTEN/NOTIFY channel of new deliveries. */
export const DELIVERIES_CHANNEL = "phonebook_webhook_deliveries";

export async function loadClaimed(db: Executor, ids: string[]): Promise<ClaimedDelivery[]> {
  if (ids.length === 0) return [];
  return db
    .selectFrom("webhook_deliveries as d")
    .innerJoin("webhook_subscriptions as s", "s.id", "d.subscription_id")
    .innerJoin("events as e", "e.id", "d.event_id")
    .selectAll("d")
    .select([
      "s.url",
      "s.secret",
      "s.previous_secret",
      "s.previous_secret_expires_at",
      "e.data as event_data",
      "e.created_at as event_created_at",
    ])
    .where("d.id", "in", ids)
    .execute();
}

/** Updates a delivery this owner still holds; false when its lease was lost. */
export async function updateHeldDelivery(
  db: Executor,
  id: string,
  owner: string,
  patch: Partial<DeliveryRow>,
): Promise<boolean> {
  const result = await db
    .updateTable("webhook_deliveries")
    .set(patch)
    .where("id", "=", id)
    .where("lease_owner", "=", owner)
    .where("status", "=", "pending")
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export async function insertAttempt(db: Executor, row: AttemptRow): Promise<void> {
  await db
    .insertInto("webhook_attempts")
    .values(row)
    .onConflict((oc) => oc.columns(["delivery_id", "attempt"]).doNothing())
    .execute();
}

export async function findDelivery(
  db: Executor,
  organizationId: string,
  id: string,
): Promise<DeliveryRow | undefined> {
  return db
    .selectFrom("webhook_deliveries")
    .selectAll()
    .where("organization_id", "=", organizationId)
    .where("id", "=", id)
    .executeTakeFirst();
}

export interface DeliveryFilters {
  organizationId: string;
  subscriptionId?: string | undefined;
  eventId?: string | undefined;
  eventType?: string | undefined;
  status?: DeliveryStatus | undefined;
}

export async function listDeliveries(
  db: Executor,
  f: DeliveryFilters,
  after: { created_at: number; id: string } | undefined,
  limit: number,
): Promise<DeliveryRow[]> {
  let query = db.selectFrom("webhook_deliveries").selectAll().where("organization_id", "=", f.organizationId);
  if (f.subscriptionId !== undefined) query = query.where("subscription_id", "=", f.subscriptionId);
  if (f.eventId !== undefined) query = query.where("event_id", "=", f.eventId);
  if (f.eventType !== undefined) query = query.where("event_type", "=", f.eventType);
  if (f.status !== undefined) query = query.where("status", "=", f.status);
  if (after) {
    query = query.where((eb) =>
      eb.or([
        eb("created_at", "<", after.created_at),
        eb.and([eb("created_at", "=", after.created_at), eb("id", "<", after.id)]),
      ]),
    );
  }
  return query.orderBy("created_at", "desc").orderBy("id", "desc").limit(limit).execute();
}

export async function attemptsOf(db: Executor, deliveryIds: string[]): Promise<AttemptRow[]> {
  if (deliveryIds.length === 0) return [];
  return db
    .selectFrom("webhook_attempts")
    .selectAll()
    .where("delivery_id", "in", deliveryIds)
    .orderBy("delivery_id")
    .orderBy("attempt")
    .execute();
}

/**
 * Whether a delivery worker has anything to do: a pending delivery, or an
 * event older than `before` (past its retention). Two index probes.
 */
export async function hasDeliveryWork(db: Executor, before: number): Promise<boolean> {
  const pending = await db
    .selectFrom("webhook_deliveries")
    .select("id")
    .where("status", "=", "pending")
    .limit(1)
    .executeTakeFirst();
  if (pending) return true;
  const old = await db
    .selectFrom("events")
    .select("id")
    .where("created_at", "<", before)
    .limit(1)
    .executeTakeFirst();
  return old !== undefined;
}

/** Removes events and deliveries older than `before`; returns the number of events removed. */
export async function deleteOlderThan(db: Executor, before: number, batch: number): Promise<number> {
  const old = await db
    .selectFrom("webhook_deliveries")
    .select("id")
    .where("created_at", "<", before)
    .limit(batch)
    .execute();
  if (old.length > 0) {
    await db
      .deleteFrom("webhook_deliveries")
      .where(
        "id",
        "in",
        old.map((r) => r.id),
      )
      .execute();
  }
  const events = await db
    .selectFrom("events")
    .select("id")
    .where("created_at", "<", before)
    .limit(batch)
    .execute();
  if (events.length > 0) {
    await db
      .deleteFrom("events")
      .where(
        "id",
        "in",
        events.map((r) => r.id),
      )
      .execute();
  }
  return events.length + old.length;
}

// --------------------------------------------------------------- metrics

/**
 * The queue as /metrics shows it, cheap on a big outbox: both read the partial
 * index of pending deliveries (webhook_deliveries_due), never the table of
 * delivered ones. `pending` counts index entries (cost grows with the backlog,
 * not with the 30 days kept); `oldestDueAt` walks that index in order and stops
 * at the first delivery of an enabled endpoint.
 */
export async function queueFigures(
  db: Executor,
  at: number,
): Promise<{ pending: number; oldestDueAt: number | null }> {
  const q = queueFigureQueries(db, at);
  const count = await q.pending.executeTakeFirstOrThrow();
  const oldest = await q.oldestDue.executeTakeFirst();
  return { pending: Number(count.n), oldestDueAt: oldest?.next_attempt_at ?? null };
}

/** The two statements of queueFigures (tests read their plans). */
export function queueFigureQueries(db: Executor, at: number) {
  return {
    pending: db
      .selectFrom("webhook_deliveries")
      .select((eb) => eb.fn.countAll<number | string>().as("n"))
      .where("status", "=", "pending"),
    oldestDue: db
      .selectFrom("webhook_deliveries as d")
      .innerJoin("webhook_subscriptions as s", "s.id", "d.subscription_id")
      .select("d.next_attempt_at")
      .where("d.status", "=", "pending")
      .where("d.next_attempt_at", "<=", at)
      .where("s.enabled", "=", 1)
      .orderBy("d.next_attempt_at")
      .limit(1),
  };
}
