import { newId } from "../ids.ts";
import { type ContactView, findContactViews } from "../store/repositories/contacts.ts";
import * as repo from "../store/repositories/webhooks.ts";
import { type Executor, hooksOf } from "../store/store.ts";
import { now } from "./clock.ts";

/**
 * The outbox (spec §7). Every change to a contact emits its event here, in
 * the transaction of the change: `emitEvents(scope, [...])` where the change
 * is made. The events of a transaction are written when it is about to commit
 * (so they carry the contacts' state as committed, and the sequence row is
 * locked last, after every contact row: two writers cannot deadlock on it).
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
  "contact.merged",
  "contact.unmerged",
  "label.added",
  "label.removed",
  "label.created",
  "label.updated",
  "label.deleted",
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
  /** The contact's state (before the change, for contact.deleted). */
  contact?: ContactView | undefined;
  /** The contact, read as committed when the transaction's events are written (unless `contact` is given). */
  contactId?: string | undefined;
  /** label.added: the label, taken from the contact's labels when the events are written. */
  labelId?: string | undefined;
  /** contact.updated: the fields whose values changed (domain names; surfaces name them). */
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

/**
 * The events of a contact update: `contact.updated` with its changed fields
 * (domain names), and `contact.opted_out` / `contact.opted_in` when the
 * marketing preference changed (`optOut`: its new value). Nothing when nothing changed.
 */
export function updateEvents(
  contactId: string,
  changed: readonly string[],
  optOut: boolean | undefined,
  origin?: "import",
): EventInput[] {
  if (changed.length === 0) return [];
  const events: EventInput[] = [{ type: "contact.updated", contactId, changedFields: [...changed], origin }];
  if (changed.includes("marketing_opt_out") && optOut !== undefined) {
    events.push({ type: optOut ? "contact.opted_out" : "contact.opted_in", contactId, origin });
  }
  return events;
}

/** Where events are emitted: the transaction and the organisation (a domain Scope fits). */
export interface EventScope {
  db: Executor;
  organizationId: string;
}

interface Pending {
  scope: EventScope;
  inputs: EventInput[];
}

const pendingByTransaction = new WeakMap<object, Map<string, Pending>>();
const committedListeners = new Set<() => void>();

/** Called after a transaction that wrote events commits (the delivery worker listens, to start at once). */
export function onEventsCommitted(listener: () => void): () => void {
  committedListeners.add(listener);
  return () => committedListeners.delete(listener);
}

/**
 * Emits events of a change made in `scope.db`. Inside `Store.transaction`
 * they are written just before it commits; on any other handle, at once.
 */
export async function emitEvents(scope: EventScope, inputs: readonly EventInput[]): Promise<void> {
  if (inputs.length === 0) return;
  const hooks = hooksOf(scope.db);
  if (!hooks) {
    if ((await writeEvents(scope, inputs)) > 0) for (const listener of committedListeners) listener();
    return;
  }
  let byOrganization = pendingByTransaction.get(scope.db);
  if (!byOrganization) {
    const created = new Map<string, Pending>();
    byOrganization = created;
    pendingByTransaction.set(scope.db, created);
    let deliveries = 0;
    hooks.beforeCommit.push(async () => {
      pendingByTransaction.delete(scope.db);
      for (const pending of created.values()) deliveries += await writeEvents(pending.scope, pending.inputs);
    });
    hooks.afterCommit.push(() => {
      // Only a commit that queued deliveries wakes the worker (most writes have no endpoint to tell).
      if (deliveries > 0) for (const listener of committedListeners) listener();
    });
  }
  let pending = byOrganization.get(scope.organizationId);
  if (!pending) {
    pending = { scope, inputs: [] };
    byOrganization.set(scope.organizationId, pending);
  }
  pending.inputs.push(...inputs);
}

const VIEW_CHUNK = 1000;

/**
 * Reads the contacts the events name (as they are now) and records the
 * events, a thousand at a time: a change that tells many contacts (a label
 * deleted from 100,000 of them) holds one chunk of contact views in memory,
 * not all of them. Returns the number of deliveries queued.
 */
async function writeEvents(scope: EventScope, all: readonly EventInput[]): Promise<number> {
  const subscriptions = await repo.enabledSubscriptions(scope.db, scope.organizationId);
  // An import's per-contact events nobody asked for are never recorded: drop
  // them before reading their contacts (an import batch would otherwise read
  // every contact it wrote, only to throw the views away).
  const inputs = all.filter(
    (input) => input.origin !== "import" || targetsOf(subscriptions, input).length > 0,
  );
  let deliveries = 0;
  for (let i = 0; i < inputs.length; i += VIEW_CHUNK) {
    deliveries += await writeEventChunk(scope, inputs.slice(i, i + VIEW_CHUNK), subscriptions);
  }
  return deliveries;
}

/** Writes a chunk of events; returns the number of deliveries queued. */
async function writeEventChunk(
  scope: EventScope,
  inputs: readonly EventInput[],
  subscriptions: Subscriptions,
): Promise<number> {
  const wanted = [
    ...new Set(
      inputs.flatMap((i) => (i.contact === undefined && i.contactId !== undefined ? [i.contactId] : [])),
    ),
  ];
  const views = new Map<string, ContactView>();
  for (let i = 0; i < wanted.length; i += VIEW_CHUNK) {
    const chunk = wanted.slice(i, i + VIEW_CHUNK);
    for (const view of await findContactViews(scope.db, scope.organizationId, chunk)) {
      views.set(view.id, view);
    }
  }
  const resolved: EventInput[] = [];
  for (const input of inputs) {
    if (input.contact !== undefined || input.contactId === undefined) {
      resolved.push(input);
      continue;
    }
    const view = views.get(input.contactId);
    // Created and deleted in one transaction: its deletion tells all there is.
    if (view === undefined) continue;
    const data = { ...input.data };
    if (input.labelId !== undefined && data.label === undefined) {
      data.label = view.labels.find((l) => l.id === input.labelId) ?? { id: input.labelId };
    }
    resolved.push({ ...input, contact: view, data });
  }
  return (await writeRecords(scope.db, scope.organizationId, resolved, subscriptions)).deliveries;
}

type Subscriptions = Awaited<ReturnType<typeof repo.enabledSubscriptions>>;

/** The enabled endpoints an event goes to. */
function targetsOf(subscriptions: Subscriptions, input: EventInput): string[] {
  return subscriptions
    .filter((s) =>
      input.subscriptionId !== undefined
        ? s.id === input.subscriptionId
        : wants(s, input.type) && (input.origin !== "import" || s.include_import_contacts === 1),
    )
    .map((s) => s.id);
}

function wants(subscription: { events: string }, type: EventType): boolean {
  const types = JSON.parse(subscription.events) as string[];
  return types.includes(ALL_EVENTS) || types.includes(type);
}

/**
 * Writes events and their deliveries in the caller's transaction now; returns
 * the events written. Contact changes use emitEvents; this is for events that
 * are the write itself (ping, an endpoint disabled), made last in their
 * transaction: the sequence row it locks is then held only until the commit.
 */
export async function recordEvents(
  db: Executor,
  organizationId: string,
  inputs: readonly EventInput[],
): Promise<repo.EventRow[]> {
  return (await writeRecords(db, organizationId, inputs)).events;
}

async function writeRecords(
  db: Executor,
  organizationId: string,
  inputs: readonly EventInput[],
  enabled?: Subscriptions,
): Promise<{ events: repo.EventRow[]; deliveries: number }> {
  const none = { events: [], deliveries: 0 };
  if (inputs.length === 0) return none;
  const subscriptions = enabled ?? (await repo.enabledSubscriptions(db, organizationId));
  const planned: Array<{ input: EventInput; targets: string[] }> = [];
  for (const input of inputs) {
    const targets = targetsOf(subscriptions, input);
    // An import's per-contact events exist only for endpoints that asked for them.
    if (input.origin === "import" && targets.length === 0) continue;
    planned.push({ input, targets });
  }
  if (planned.length === 0) return none;
  const last = await repo.takeSequence(db, organizationId, planned.length);
  const at = now();
  const events: repo.EventRow[] = [];
  const deliveries: repo.DeliveryRow[] = [];
  planned.forEach(({ input, targets }, index) => {
    const seq = last - planned.length + 1 + index;
    const data: Record<string, unknown> = {};
    if (input.contact) data.contact = snapshotOf(input.contact);
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
  return { events, deliveries: deliveries.length };
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

/**
 * The contact as stored in an event: the domain's view (in domain words; the
 * surface that shows or sends the event renders it, see
 * http/native/event-representation.ts), without the internal search text.
 */
function snapshotOf(view: ContactView): Omit<ContactView, "search_text"> {
  const { search_text: _omitted, ...rest } = view;
  return rest;
}
