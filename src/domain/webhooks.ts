import { ApiError, notFound } from "../errors.ts";
import { newId } from "../ids.ts";
import * as repo from "../store/repositories/webhooks.ts";
import type { DeliveryStatus } from "../store/schema.ts";
import type { Executor } from "../store/store.ts";
import { now } from "./clock.ts";
import { ALL_EVENTS, EVENT_TYPES, isEventType, newDelivery, recordEvents } from "./events.ts";
import type { Keyset } from "./pagination.ts";
import { generateSecret } from "./webhook-signing.ts";
import { type TargetPolicy, validateTargetUrl } from "./webhook-targets.ts";

export type { DeliveryRow, EventRow, SubscriptionRow } from "../store/repositories/webhooks.ts";

/** Endpoints per organisation. */
export const MAX_SUBSCRIPTIONS = 16;
/** A rotated secret keeps signing alongside the new one for this long. */
export const ROTATION_OVERLAP_MS = 24 * 60 * 60 * 1000;
/** Events re-sent by one subscription replay call at most; `next_since` continues. */
export const REPLAY_MAX_EVENTS = 10_000;
export const DESCRIPTION_MAX = 500;

export interface SubscriptionInput {
  url?: string | undefined;
  events?: string[] | undefined;
  description?: string | null | undefined;
  enabled?: boolean | undefined;
  include_import_contacts?: boolean | undefined;
}

function normalizeEvents(events: string[]): string[] {
  if (events.length === 0) {
    throw new ApiError("invalid_field_value", 'events must name at least one event type, or "*".', {
      param: "events",
    });
  }
  for (const type of events) {
    if (type !== ALL_EVENTS && !isEventType(type)) {
      throw new ApiError(
        "invalid_field_value",
        `Unknown event type ${JSON.stringify(type).slice(0, 80)}; use "*" or any of ${EVENT_TYPES.join(", ")}.`,
        { param: "events" },
      );
    }
  }
  const unique = [...new Set(events)];
  return unique.includes(ALL_EVENTS) ? [ALL_EVENTS] : unique;
}

/**
 * Checks an endpoint URL (validateTargetUrl) before the write transaction: a
 * DNS lookup must not hold one open. Returns the input with the URL normalised.
 */
export async function checkSubscriptionInput<T extends SubscriptionInput>(
  input: T,
  policy: TargetPolicy,
): Promise<T> {
  if (input.url === undefined) return input;
  return { ...input, url: await validateTargetUrl(input.url, policy) };
}

/** Creates an endpoint; `input.url` was checked by checkSubscriptionInput. */
export async function createSubscription(
  db: Executor,
  organizationId: string,
  input: SubscriptionInput & { url: string },
): Promise<repo.SubscriptionRow> {
  const url = input.url;
  const events = normalizeEvents(input.events ?? [ALL_EVENTS]);
  if ((await repo.countSubscriptions(db, organizationId)) >= MAX_SUBSCRIPTIONS) {
    throw new ApiError(
      "invalid_field_value",
      `An organisation has at most ${MAX_SUBSCRIPTIONS} webhook endpoints; delete one first.`,
      { param: "url" },
    );
  }
  const at = now();
  const row: repo.SubscriptionRow = {
    id: newId("whs"),
    organization_id: organizationId,
    url,
    description: input.description ?? null,
    events: JSON.stringify(events),
    include_import_contacts: input.include_import_contacts ? 1 : 0,
    enabled: input.enabled === false ? 0 : 1,
    secret: generateSecret(),
    previous_secret: null,
    previous_secret_expires_at: null,
    failing_since: null,
    disabled_at: input.enabled === false ? at : null,
    disabled_reason: input.enabled === false ? "manual" : null,
    created_at: at,
    updated_at: at,
  };
  await repo.insertSubscription(db, row);
  return row;
}

export async function getSubscription(
  db: Executor,
  organizationId: string,
  id: string,
): Promise<repo.SubscriptionRow> {
  const row = await repo.findSubscription(db, organizationId, id);
  if (!row) throw notFound("webhook subscription", "id");
  return row;
}

export async function listSubscriptions(
  db: Executor,
  organizationId: string,
  after: Keyset | undefined,
  limit: number,
): Promise<repo.SubscriptionRow[]> {
  return repo.listSubscriptions(db, organizationId, after, limit);
}

export async function updateSubscription(
  db: Executor,
  organizationId: string,
  id: string,
  input: SubscriptionInput,
): Promise<repo.SubscriptionRow> {
  const current = await getSubscription(db, organizationId, id);
  const patch: Partial<repo.SubscriptionRow> = {};
  if (input.url !== undefined) patch.url = input.url;
  if (input.events !== undefined) patch.events = JSON.stringify(normalizeEvents(input.events));
  if (input.description !== undefined) patch.description = input.description;
  if (input.include_import_contacts !== undefined) {
    patch.include_import_contacts = input.include_import_contacts ? 1 : 0;
  }
  const at = now();
  if (input.enabled === true && current.enabled === 0) {
    Object.assign(patch, { enabled: 1, disabled_at: null, disabled_reason: null, failing_since: null });
  } else if (input.enabled === false && current.enabled === 1) {
    Object.assign(patch, { enabled: 0, disabled_at: at, disabled_reason: "manual" });
  }
  if (Object.keys(patch).length === 0) return current;
  patch.updated_at = Math.max(at, current.updated_at + 1);
  await repo.updateSubscription(db, id, patch);
  return { ...current, ...patch };
}

export async function deleteSubscription(db: Executor, organizationId: string, id: string): Promise<void> {
  if (!(await repo.deleteSubscription(db, organizationId, id))) throw notFound("webhook subscription", "id");
}

/** A new secret; the old one keeps signing alongside it for 24 h. */
export async function rotateSecret(
  db: Executor,
  organizationId: string,
  id: string,
): Promise<repo.SubscriptionRow> {
  const current = await getSubscription(db, organizationId, id);
  const at = now();
  const patch: Partial<repo.SubscriptionRow> = {
    secret: generateSecret(),
    previous_secret: current.secret,
    previous_secret_expires_at: at + ROTATION_OVERLAP_MS,
    updated_at: Math.max(at, current.updated_at + 1),
  };
  await repo.updateSubscription(db, id, patch);
  return { ...current, ...patch };
}

/** Sends a `ping` event to one endpoint; returns its delivery. */
export async function pingSubscription(
  db: Executor,
  organizationId: string,
  id: string,
): Promise<repo.DeliveryRow> {
  const subscription = await getSubscription(db, organizationId, id);
  if (subscription.enabled === 0) {
    throw new ApiError("invalid_field_value", "The endpoint is disabled; enable it before testing it.", {
      param: "id",
    });
  }
  const [event] = await recordEvents(db, organizationId, [
    { type: "ping", subscriptionId: id, data: { subscription_id: id } },
  ]);
  const [delivery] = await repo.listDeliveries(db, { organizationId, eventId: event!.id }, undefined, 1);
  return delivery!;
}

/** Sends one delivery's event again to its endpoint, as a new delivery. */
export async function replayDelivery(
  db: Executor,
  organizationId: string,
  id: string,
): Promise<repo.DeliveryRow> {
  const original = await repo.findDelivery(db, organizationId, id);
  if (!original) throw notFound("webhook delivery", "id");
  const event = await repo.findEvent(db, organizationId, original.event_id);
  if (!event) {
    throw new ApiError("resource_not_found", "The event of this delivery is past its retention.", {
      param: "id",
    });
  }
  const at = now();
  const replay = newDelivery(event, original.subscription_id, `replay:${newId("whd")}`, at, original.id);
  await repo.insertDeliveries(db, [replay]);
  return replay;
}

/**
 * Sends again every event of a time window (that the endpoint subscribes to)
 * to one endpoint, in order per contact, as new deliveries. At most
 * REPLAY_MAX_EVENTS per call: `next_since` is where to continue.
 */
export async function replaySubscription(
  db: Executor,
  organizationId: string,
  id: string,
  window: { since: number; until?: number | undefined },
): Promise<{ queued: number; next_since: number | null }> {
  const subscription = await getSubscription(db, organizationId, id);
  const types = JSON.parse(subscription.events) as string[];
  const all = types.includes(ALL_EVENTS);
  const batchKey = newId("whd");
  const at = now();
  let afterSeq = 0;
  let queued = 0;
  let scanned = 0;
  let nextSince: number | null = null;
  for (;;) {
    const events = await repo.listEvents(db, {
      organizationId,
      since: window.since,
      until: window.until,
      afterSeq,
      limit: 500,
    });
    if (events.length === 0) break;
    const rows: repo.DeliveryRow[] = [];
    for (const event of events) {
      if (scanned >= REPLAY_MAX_EVENTS) {
        nextSince = event.created_at;
        break;
      }
      scanned++;
      afterSeq = event.seq;
      if (event.type === "ping" || !(all || types.includes(event.type))) continue;
      rows.push(newDelivery(event, id, `replay:${batchKey}:${event.contact_id ?? event.id}`, at));
    }
    await repo.insertDeliveries(db, rows);
    queued += rows.length;
    if (nextSince !== null || events.length < 500) break;
  }
  return { queued, next_since: nextSince };
}

export async function getDelivery(
  db: Executor,
  organizationId: string,
  id: string,
): Promise<repo.DeliveryRow> {
  const row = await repo.findDelivery(db, organizationId, id);
  if (!row) throw notFound("webhook delivery", "id");
  return row;
}

export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ["pending", "succeeded", "failed", "canceled"];

export async function listDeliveries(
  db: Executor,
  filters: repo.DeliveryFilters,
  after: Keyset | undefined,
  limit: number,
): Promise<{ rows: repo.DeliveryRow[]; attempts: Map<string, repo.AttemptRow[]> }> {
  const rows = await repo.listDeliveries(db, filters, after, limit);
  const attempts = new Map<string, repo.AttemptRow[]>();
  for (const attempt of await repo.attemptsOf(
    db,
    rows.map((r) => r.id),
  )) {
    const list = attempts.get(attempt.delivery_id) ?? [];
    list.push(attempt);
    attempts.set(attempt.delivery_id, list);
  }
  return { rows, attempts };
}

export async function listEvents(db: Executor, query: repo.EventListQuery): Promise<repo.EventRow[]> {
  return repo.listEvents(db, query);
}

export async function getEvent(db: Executor, organizationId: string, id: string): Promise<repo.EventRow> {
  const row = await repo.findEvent(db, organizationId, id);
  if (!row) throw notFound("event", "id");
  return row;
}
