import { contactOut } from "../http/native/contact-representation.ts";
import { newId } from "../ids.ts";
import type { ContactView } from "../store/repositories/contacts.ts";
import * as repo from "../store/repositories/webhooks.ts";
import type { Executor } from "../store/store.ts";
import { now } from "./clock.ts";

/**
 * The outbox (spec §7). Every change to a contact records its event here, in
 * the transaction of the change: `recordEvents(tx, organizationId, [...])`.
 * Each event takes the next number of its organisation's sequence inside that
 * transaction, so events commit in sequence order, and one delivery row is
 * written per enabled endpoint that wants it; the worker (jobs/webhook-worker.ts)
 * sends them after commit.
 *
 * To add an event type, add it to EVENT_TYPES (subscribable, validated,
 * documented in the OpenAPI) and record it where the change happens.
 */
export const EVENT_TYPES = [
  "contact.created",
  "contact.updated",
  "contact.deleted",
  "contact.opted_out",
  "contact.opted_in",
  "label.added",
  "label.removed",
  "import.completed",
  "webhook_subscription.disabled",
] as const;

export type SubscribableEventType = (typeof EVENT_TYPES)[number];
/** `ping` is sent by `POST /v1/webhook_subscriptions/{id}/test` to that endpoint only. */
export type EventType = SubscribableEventType | "ping";

export const ALL_EVENTS = "*";

export function isEventType(value: string): value is SubscribableEventType {
  return (EVENT_TYPES as readonly string[]).includes(value);
}

export interface EventInput {
  type: EventType;
  /** The contact's state after the change (before it, for contact.deleted). */
  contact?: ContactView | undefined;
  /** contact.updated: the fields whose values changed (native names). */
  changedFields?: string[] | undefined;
  /** Further members of `data` (label, import, subscription). */
  data?: Record<string, unknown> | undefined;
  /**
   * `import`: a per-contact event of an import. It is recorded and delivered
   * only when an endpoint asked for imports' contact events
   * (`include_import_contacts`); otherwise the import tells its end with one
   * `import.completed`.
   */
  origin?: "import" | undefined;
  /** Deliver to this endpoint only (ping). */
  subscriptionId?: string | undefined;
}

/** Native field names in `changed_fields` (the domain's are translated here). */
const NATIVE_FIELD_NAMES: Record<string, string> = { display_name: "name" };

export function nativeChangedFields(changed: readonly string[]): string[] {
  const out = new Set<string>();
  for (const field of changed) {
    out.add(NATIVE_FIELD_NAMES[field] ?? field);
    if (field === "display_name") out.add("display_name");
    if (field === "phone_number") out.add("wa_id");
  }
  return [...out];
}

/**
 * The events of a contact update: `contact.updated` with its changed fields,
 * and `contact.opted_out` / `contact.opted_in` when the marketing preference
 * changed. Nothing when nothing changed.
 */
export function updateEvents(
  contact: ContactView,
  changed: readonly string[],
  origin?: "import",
): EventInput[] {
  if (changed.length === 0) return [];
  const events: EventInput[] = [
    { type: "contact.updated", contact, changedFields: nativeChangedFields(changed), origin },
  ];
  if (changed.includes("marketing_opt_out")) {
    events.push({
      type: contact.marketing_opt_out === 1 ? "contact.opted_out" : "contact.opted_in",
      contact,
      origin,
    });
  }
  return events;
}

function wants(subscription: { events: string }, type: EventType): boolean {
  const types = JSON.parse(subscription.events) as string[];
  return types.includes(ALL_EVENTS) || types.includes(type);
}

/**
 * Writes events and their deliveries in the caller's transaction; returns the
 * events written. Call it last in the transaction (after the contact rows are
 * written): the sequence row it locks is then held only until the commit.
 */
export async function recordEvents(
  db: Executor,
  organizationId: string,
  inputs: readonly EventInput[],
): Promise<repo.EventRow[]> {
  if (inputs.length === 0) return [];
  const subscriptions = await repo.enabledSubscriptions(db, organizationId);
  const planned: Array<{ input: EventInput; targets: string[] }> = [];
  for (const input of inputs) {
    const targets = subscriptions
      .filter((s) =>
        input.subscriptionId !== undefined
          ? s.id === input.subscriptionId
          : wants(s, input.type) && (input.origin !== "import" || s.include_import_contacts === 1),
      )
      .map((s) => s.id);
    // An import's per-contact events exist only for endpoints that asked for them.
    if (input.origin === "import" && targets.length === 0) continue;
    planned.push({ input, targets });
  }
  if (planned.length === 0) return [];
  const last = await repo.takeSequence(db, organizationId, planned.length);
  const at = now();
  const events: repo.EventRow[] = [];
  const deliveries: repo.DeliveryRow[] = [];
  planned.forEach(({ input, targets }, index) => {
    const seq = last - planned.length + 1 + index;
    const data: Record<string, unknown> = {};
    if (input.contact) data.contact = contactOut(input.contact);
    if (input.changedFields) data.changed_fields = input.changedFields;
    Object.assign(data, input.data);
    const event: repo.EventRow = {
      id: newId("evt"),
      organization_id: organizationId,
      seq,
      type: input.type,
      contact_id: input.contact?.id ?? null,
      data: JSON.stringify(data),
      created_at: at,
    };
    events.push(event);
    for (const subscriptionId of targets) {
      deliveries.push(newDelivery(event, subscriptionId, event.contact_id ?? event.id, at));
    }
  });
  await repo.insertEvents(db, events);
  await repo.insertDeliveries(db, deliveries);
  return events;
}

export function newDelivery(
  event: Pick<repo.EventRow, "id" | "organization_id" | "seq" | "type">,
  subscriptionId: string,
  orderingKey: string,
  at: number,
  replayOf: string | null = null,
): repo.DeliveryRow {
  return {
    id: newId("whd"),
    organization_id: event.organization_id,
    subscription_id: subscriptionId,
    event_id: event.id,
    event_seq: event.seq,
    event_type: event.type,
    ordering_key: orderingKey,
    status: "pending",
    attempts: 0,
    next_attempt_at: at,
    lease_owner: null,
    lease_until: null,
    last_status_code: null,
    last_error: null,
    replay_of: replayOf,
    created_at: at,
    updated_at: at,
    completed_at: null,
  };
}

/** The body sent for an event: the same bytes on every attempt. */
export function eventBody(event: Pick<repo.EventRow, "id" | "type" | "seq" | "created_at" | "data">): string {
  return `{"id":${JSON.stringify(event.id)},"object":"event","type":${JSON.stringify(event.type)},"sequence":${event.seq},"created_at":"${new Date(event.created_at).toISOString()}","data":${event.data}}`;
}
