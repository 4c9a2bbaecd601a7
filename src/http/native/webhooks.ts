import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { toIso } from "../../domain/clock.ts";
import { ALL_EVENTS, EVENT_TYPES } from "../../domain/events.ts";
import { canonicalScope, DEFAULT_LIMIT, pageOf } from "../../domain/pagination.ts";
import {
  checkSubscriptionInput,
  createSubscription,
  DESCRIPTION_MAX,
  type DeliveryRow,
  deleteSubscription,
  type EventRow,
  getDelivery,
  getEvent,
  getSubscription,
  listDeliveries,
  listEvents,
  listSubscriptions,
  MAX_SUBSCRIPTIONS,
  pingSubscription,
  replayDelivery,
  replaySubscription,
  rotateSecret,
  type SubscriptionRow,
  updateSubscription,
} from "../../domain/webhooks.ts";
import { ApiError } from "../../errors.ts";
import { type AttemptRow, attemptsOf } from "../../store/repositories/webhooks.ts";
import { principalOf } from "../auth.ts";
import {
  DataEnvelope,
  Id,
  instantOf,
  ListEnvelope,
  NATIVE_ERROR_RESPONSES,
  NO_CONTROL_CHARACTERS,
  NullableString,
  PageQuery,
  Timestamp,
} from "../schemas.ts";
import { runWrite } from "../write-transaction.ts";
import { nativeEventOut } from "./event-representation.ts";

const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);
const iso = (ms: number | null) => (ms === null ? null : toIso(ms));

const EventTypeName = Type.String({
  maxLength: 100,
  description: `"${ALL_EVENTS}" (every type) or one of: ${EVENT_TYPES.join(", ")}`,
});

export const SubscriptionSchema = Type.Object(
  {
    object: Type.Literal("webhook_subscription"),
    id: Type.String(),
    url: Type.String(),
    description: NullableString(),
    events: Type.Array(Type.String()),
    include_import_contacts: Type.Boolean({
      description: "Deliver imports' per-contact events too (otherwise an import sends one import.completed)",
    }),
    enabled: Type.Boolean(),
    status: Type.Union([Type.Literal("enabled"), Type.Literal("disabled")]),
    disabled_reason: Type.Union(
      [Type.Literal("manual"), Type.Literal("gone"), Type.Literal("failing"), Type.Null()],
      {
        description:
          "manual (PATCH enabled=false), gone (the endpoint answered 410), failing (3 days without a success)",
      },
    ),
    disabled_at: NullableTimestamp,
    failing_since: Type.Union([Timestamp, Type.Null()], {
      description: "First failed attempt since the last success",
    }),
    previous_secret_expires_at: Type.Union([Timestamp, Type.Null()], {
      description: "Until then the secret before the last rotation signs too",
    }),
    secret: Type.Optional(
      Type.String({ description: "whsec_…: shown only in the answers to create and rotate_secret" }),
    ),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: "WebhookSubscription" },
);

function subscriptionOut(row: SubscriptionRow, withSecret = false) {
  return {
    object: "webhook_subscription" as const,
    id: row.id,
    url: row.url,
    description: row.description,
    events: JSON.parse(row.events) as string[],
    include_import_contacts: row.include_import_contacts === 1,
    enabled: row.enabled === 1,
    status: row.enabled === 1 ? ("enabled" as const) : ("disabled" as const),
    disabled_reason: row.disabled_reason as "manual" | "gone" | "failing" | null,
    disabled_at: iso(row.disabled_at),
    failing_since: iso(row.failing_since),
    previous_secret_expires_at:
      row.previous_secret_expires_at !== null && row.previous_secret_expires_at > Date.now()
        ? iso(row.previous_secret_expires_at)
        : null,
    ...(withSecret ? { secret: row.secret } : {}),
    created_at: toIso(row.created_at),
    updated_at: toIso(row.updated_at),
  };
}

const AttemptSchema = Type.Object({
  attempt: Type.Integer(),
  started_at: Timestamp,
  duration_ms: Type.Integer(),
  status_code: Type.Union([Type.Integer(), Type.Null()]),
  error: NullableString(),
  response_body: NullableString({ description: "The first 1 KiB of the response" }),
});

const DeliveryStatus = Type.Union([
  Type.Literal("pending"),
  Type.Literal("succeeded"),
  Type.Literal("failed"),
  Type.Literal("canceled"),
]);

export const DeliverySchema = Type.Object(
  {
    object: Type.Literal("webhook_delivery"),
    id: Type.String(),
    subscription_id: Type.String(),
    event_id: Type.String(),
    event_type: Type.String(),
    event_sequence: Type.Integer(),
    status: DeliveryStatus,
    attempt_count: Type.Integer(),
    next_attempt_at: Type.Union([Timestamp, Type.Null()], { description: "Set while pending" }),
    last_status_code: Type.Union([Type.Integer(), Type.Null()]),
    last_error: NullableString(),
    replay_of: Type.Union([Type.String(), Type.Null()], { description: "The delivery this one replays" }),
    attempts: Type.Array(AttemptSchema),
    created_at: Timestamp,
    updated_at: Timestamp,
    completed_at: NullableTimestamp,
  },
  { $id: "WebhookDelivery" },
);

function deliveryOut(row: DeliveryRow, attempts: AttemptRow[] = []) {
  return {
    object: "webhook_delivery" as const,
    id: row.id,
    subscription_id: row.subscription_id,
    event_id: row.event_id,
    event_type: row.event_type,
    event_sequence: row.event_seq,
    status: row.status,
    attempt_count: row.attempts,
    next_attempt_at: row.status === "pending" ? toIso(row.next_attempt_at) : null,
    last_status_code: row.last_status_code,
    last_error: row.last_error,
    replay_of: row.replay_of,
    attempts: attempts.map((a) => ({
      attempt: a.attempt,
      started_at: toIso(a.started_at),
      duration_ms: a.duration_ms,
      status_code: a.status_code,
      error: a.error,
      response_body: a.response_body,
    })),
    created_at: toIso(row.created_at),
    updated_at: toIso(row.updated_at),
    completed_at: iso(row.completed_at),
  };
}

export const EventSchema = Type.Object(
  {
    object: Type.Literal("event"),
    id: Type.String(),
    type: Type.String(),
    sequence: Type.Integer({
      description: "Per-organisation order; GET /v1/events?after=<sequence> continues",
    }),
    created_at: Timestamp,
    data: Type.Record(Type.String(), Type.Unknown(), {
      description: "contact (native representation), changed_fields, label, import, …",
    }),
  },
  { $id: "Event" },
);

function eventOut(row: EventRow) {
  return nativeEventOut(row);
}

const Description = Type.Union([
  Type.String({ minLength: 1, maxLength: DESCRIPTION_MAX, pattern: NO_CONTROL_CHARACTERS }),
  Type.Null(),
]);
const Url = Type.String({
  minLength: 1,
  maxLength: 2048,
  description: "https:// (http:// only if the operator allows it)",
});
const Events = Type.Array(EventTypeName, { minItems: 1, maxItems: 50 });

/** `/v1/webhook_subscriptions`, `/v1/webhook_deliveries`, `/v1/events` (spec §7, docs/webhooks.md). */
export const webhookRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { cursors, config } = app.services;
  const policy = { allowHttp: config.webhooks.allowHttp, allowPrivate: config.webhooks.allowPrivate };
  const orgOf = (request: Parameters<typeof principalOf>[0]) => principalOf(request).organization.id;
  const wake = () => app.webhookWorker?.notify();
  const subTags = ["webhooks"];
  const idParams = Type.Object({ id: Id("whs") });

  app.post(
    "/webhook_subscriptions",
    {
      schema: {
        tags: subTags,
        summary: `Create a webhook endpoint (at most ${MAX_SUBSCRIPTIONS} per organisation); the secret is shown only here`,
        body: Type.Object(
          {
            url: Url,
            events: Type.Optional(Events),
            description: Type.Optional(Description),
            enabled: Type.Optional(Type.Boolean()),
            include_import_contacts: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: { 201: DataEnvelope(SubscriptionSchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const input = await checkSubscriptionInput(request.body, policy);
      return runWrite(request, reply, async (tx) => {
        const row = await createSubscription(tx, orgOf(request), input);
        return { status: 201, body: { data: subscriptionOut(row, true) } };
      });
    },
  );

  app.get(
    "/webhook_subscriptions",
    {
      schema: {
        tags: subTags,
        summary: "List webhook endpoints (newest first)",
        querystring: Type.Object({ ...PageQuery }, { additionalProperties: false }),
        response: { 200: ListEnvelope(SubscriptionSchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? DEFAULT_LIMIT;
      const scope = canonicalScope("native.webhook_subscriptions", orgOf(request), {});
      const after =
        request.query.cursor === undefined ? undefined : cursors.decode(scope, request.query.cursor);
      const rows = await listSubscriptions(app.services.store.db, orgOf(request), after, limit + 1);
      return pageOf(rows, limit, cursors, scope, (r) => subscriptionOut(r));
    },
  );

  app.get(
    "/webhook_subscriptions/:id",
    {
      schema: {
        tags: subTags,
        summary: "Fetch a webhook endpoint",
        params: idParams,
        response: { 200: DataEnvelope(SubscriptionSchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request) => ({
      data: subscriptionOut(await getSubscription(app.services.store.db, orgOf(request), request.params.id)),
    }),
  );

  app.patch(
    "/webhook_subscriptions/:id",
    {
      schema: {
        tags: subTags,
        summary: "Change a webhook endpoint; enabled=true re-enables a disabled one",
        params: idParams,
        body: Type.Object(
          {
            url: Type.Optional(Url),
            events: Type.Optional(Events),
            description: Type.Optional(Description),
            enabled: Type.Optional(Type.Boolean()),
            include_import_contacts: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: { 200: DataEnvelope(SubscriptionSchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      if (Object.keys(request.body).length === 0) {
        throw new ApiError(
          "missing_required_field",
          "Give at least one of url, events, description, enabled, include_import_contacts.",
        );
      }
      const input = await checkSubscriptionInput(request.body, policy);
      const body = await runWrite(request, reply, async (tx) => {
        const row = await updateSubscription(tx, orgOf(request), request.params.id, input);
        return { status: 200, body: { data: subscriptionOut(row) } };
      });
      wake();
      return body;
    },
  );

  app.delete(
    "/webhook_subscriptions/:id",
    {
      schema: {
        tags: subTags,
        summary: "Delete a webhook endpoint (and its deliveries log)",
        params: idParams,
        response: {
          200: DataEnvelope(
            Type.Object({
              id: Type.String(),
              object: Type.Literal("webhook_subscription"),
              deleted: Type.Literal(true),
            }),
          ),
          ...NATIVE_ERROR_RESPONSES,
        },
      },
    },
    async (request, reply) =>
      runWrite(request, reply, async (tx) => {
        await deleteSubscription(tx, orgOf(request), request.params.id);
        return {
          status: 200,
          body: {
            data: { id: request.params.id, object: "webhook_subscription" as const, deleted: true as const },
          },
        };
      }),
  );

  app.post(
    "/webhook_subscriptions/:id/rotate_secret",
    {
      schema: {
        tags: subTags,
        summary: "New signing secret (shown once); the old one keeps signing alongside it for 24 h",
        params: idParams,
        response: { 200: DataEnvelope(SubscriptionSchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request, reply) =>
      runWrite(request, reply, async (tx) => {
        const row = await rotateSecret(tx, orgOf(request), request.params.id);
        return { status: 200, body: { data: subscriptionOut(row, true) } };
      }),
  );

  app.post(
    "/webhook_subscriptions/:id/test",
    {
      schema: {
        tags: subTags,
        summary: "Send a ping event to the endpoint; returns its delivery",
        params: idParams,
        response: { 202: DataEnvelope(DeliverySchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const body = await runWrite(request, reply, async (tx) => {
        const row = await pingSubscription(tx, orgOf(request), request.params.id);
        return { status: 202, body: { data: deliveryOut(row) } };
      });
      wake();
      return body;
    },
  );

  app.post(
    "/webhook_subscriptions/:id/replay",
    {
      schema: {
        tags: subTags,
        summary: "Send again every event since a time (that the endpoint subscribes to), in order",
        params: idParams,
        body: Type.Object(
          {
            since: Timestamp,
            until: Type.Optional(Timestamp),
          },
          { additionalProperties: false },
        ),
        response: {
          202: DataEnvelope(
            Type.Object({
              object: Type.Literal("webhook_replay"),
              subscription_id: Type.String(),
              queued: Type.Integer({ description: "Deliveries created" }),
              next_since: Type.Union([Timestamp, Type.Null()], {
                description:
                  "Set when the window held more than 10,000 events: call again with since=next_since",
              }),
            }),
          ),
          ...NATIVE_ERROR_RESPONSES,
        },
      },
    },
    async (request, reply) => {
      const since = instantOf(request.body.since);
      const until = request.body.until === undefined ? undefined : instantOf(request.body.until);
      const body = await runWrite(request, reply, async (tx) => {
        const result = await replaySubscription(tx, orgOf(request), request.params.id, { since, until });
        return {
          status: 202,
          body: {
            data: {
              object: "webhook_replay" as const,
              subscription_id: request.params.id,
              queued: result.queued,
              next_since: iso(result.next_since),
            },
          },
        };
      });
      wake();
      return body;
    },
  );

  const DeliveryQuery = Type.Object(
    {
      subscription: Type.Optional(Id("whs", "Deliveries to this endpoint")),
      event: Type.Optional(Id("evt", "Deliveries of this event")),
      event_type: Type.Optional(EventTypeName),
      status: Type.Optional(DeliveryStatus),
      ...PageQuery,
    },
    { additionalProperties: false },
  );

  app.get(
    "/webhook_deliveries",
    {
      schema: {
        tags: subTags,
        summary: "List deliveries (newest first), each with its attempts",
        querystring: DeliveryQuery,
        response: { 200: ListEnvelope(DeliverySchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request) => {
      const q = request.query;
      const limit = q.limit ?? DEFAULT_LIMIT;
      const filters = {
        organizationId: orgOf(request),
        subscriptionId: q.subscription,
        eventId: q.event,
        eventType: q.event_type,
        status: q.status,
      };
      const scope = canonicalScope("native.webhook_deliveries", orgOf(request), {
        subscription: q.subscription,
        event: q.event,
        event_type: q.event_type,
        status: q.status,
      });
      const after = q.cursor === undefined ? undefined : cursors.decode(scope, q.cursor);
      const { rows, attempts } = await listDeliveries(app.services.store.db, filters, after, limit + 1);
      return {
        ...pageOf(rows, limit, cursors, scope, (r) => deliveryOut(r, attempts.get(r.id))),
      };
    },
  );

  const deliveryParams = Type.Object({ id: Id("whd") });

  app.get(
    "/webhook_deliveries/:id",
    {
      schema: {
        tags: subTags,
        summary: "Fetch a delivery with its attempts",
        params: deliveryParams,
        response: { 200: DataEnvelope(DeliverySchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request) => {
      const db = app.services.store.db;
      const row = await getDelivery(db, orgOf(request), request.params.id);
      return { data: deliveryOut(row, await attemptsOf(db, [row.id])) };
    },
  );

  app.post(
    "/webhook_deliveries/:id/replay",
    {
      schema: {
        tags: subTags,
        summary: "Send a delivery's event again to its endpoint (a new delivery)",
        params: deliveryParams,
        response: { 202: DataEnvelope(DeliverySchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const body = await runWrite(request, reply, async (tx) => {
        const row = await replayDelivery(tx, orgOf(request), request.params.id);
        return { status: 202, body: { data: deliveryOut(row) } };
      });
      wake();
      return body;
    },
  );

  app.get(
    "/events",
    {
      schema: {
        tags: subTags,
        summary:
          "List events: newest first, or with after=<sequence> oldest first from there (catch-up by polling)",
        querystring: Type.Object(
          {
            after: Type.Optional(
              Type.Integer({
                minimum: 0,
                description: "A sequence number: the events after it, in order",
                "x-error-message": "must be a sequence number (digits)",
              }),
            ),
            type: Type.Optional(Type.String({ maxLength: 100 })),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: { 200: ListEnvelope(EventSchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request) => {
      const q = request.query;
      const limit = q.limit ?? DEFAULT_LIMIT;
      const ascending = q.after !== undefined;
      const scope = canonicalScope("native.events", orgOf(request), { type: q.type, ascending });
      // Positions are sequence numbers (kept in the cursor's `created_at` slot).
      const position = q.cursor === undefined ? undefined : cursors.decode(scope, q.cursor).created_at;
      const organizationId = orgOf(request);
      const rows = await listEvents(app.services.store.db, {
        organizationId,
        type: q.type,
        limit: limit + 1,
        ...(ascending ? { afterSeq: position ?? q.after } : { beforeSeq: position }),
      });
      const has_more = rows.length > limit;
      const kept = has_more ? rows.slice(0, limit) : rows;
      const last = kept[kept.length - 1];
      return {
        data: kept.map(eventOut),
        has_more,
        next_cursor: has_more && last ? cursors.encode(scope, { created_at: last.seq, id: last.id }) : null,
      };
    },
  );

  app.get(
    "/events/:id",
    {
      schema: {
        tags: subTags,
        summary: "Fetch an event",
        params: Type.Object({ id: Id("evt") }),
        response: { 200: DataEnvelope(EventSchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request) => ({
      data: eventOut(await getEvent(app.services.store.db, orgOf(request), request.params.id)),
    }),
  );
};
