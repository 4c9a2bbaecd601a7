import type { FastifyReply, FastifyRequest, RouteOptions } from "fastify";
import {
  errorFromRecord,
  executeOnce,
  fingerprintOf,
  type IdempotentOutcome,
  parseIdempotencyKey,
  type RecordedResponse,
} from "../domain/idempotency.ts";
import { ApiError } from "../errors.ts";
import { isRetryableConflict } from "../store/driver-errors.ts";
import type { Tx } from "../store/store.ts";
import { toApiError } from "./errors.ts";
import { withRequestId } from "./request-id.ts";

export interface WriteResult<T> {
  status: number;
  body: T;
}

/** The validated Idempotency-Key of a POST, and whether a write of this request has used it. */
const idempotencyKeys = new WeakMap<FastifyRequest, { key: string; used: boolean }>();

/**
 * onRequest hook (installed by `protect`, after authentication and the rate
 * limit): validates `Idempotency-Key` on every POST; other methods ignore it.
 */
export function idempotencyKeyHook(request: FastifyRequest): void {
  if (request.method !== "POST") return;
  const key = parseIdempotencyKey(request.headers["idempotency-key"]);
  if (key !== undefined) idempotencyKeys.set(request, { key, used: false });
}

/** Response headers that belong to one response, never to a replay of it. */
const NOT_REPLAYED = new Set([
  "x-request-id",
  "x-ratelimit-limit",
  "x-ratelimit-remaining",
  "x-ratelimit-reset",
  "retry-after",
  "idempotent-replayed",
  "original-request-id",
  "content-length",
  "date",
  "connection",
  "keep-alive",
  "transfer-encoding",
]);

function handlerHeaders(reply: FastifyReply): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (value === undefined || NOT_REPLAYED.has(name.toLowerCase())) continue;
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : String(value);
  }
  return headers;
}

/** The path as the fingerprint sees it: trailing slash ignored (as routing does), query string kept. */
function fingerprintPath(url: string): string {
  const q = url.indexOf("?");
  const path = q === -1 ? url : url.slice(0, q);
  const trimmed = path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path;
  return q === -1 ? trimmed : trimmed + url.slice(q);
}

/**
 * A replayed body names the replaying request: its `request_id` (top level
 * or inside `error`) is the new one, like its X-Request-Id header; the
 * original id is in `Original-Request-Id`.
 */
function withReplayRequestId(payload: string, originalId: string, requestId: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    return payload;
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return payload;
  const body = parsed as { request_id?: unknown; error?: { request_id?: unknown } };
  let changed = false;
  if (body.request_id === originalId) {
    body.request_id = requestId;
    changed = true;
  }
  if (body.error && typeof body.error === "object" && body.error.request_id === originalId) {
    body.error.request_id = requestId;
    changed = true;
  }
  return changed ? JSON.stringify(body) : payload;
}

/**
 * Every write of every surface goes through here: `fn` runs in one
 * transaction that it receives, and returns the status and body to send.
 * Handlers return what this returns, unchanged.
 *
 * A POST with a valid Idempotency-Key (authenticated surfaces) runs exactly
 * once per organisation and key: the key record and the response are written
 * in the same transaction as the side effect (domain/idempotency.ts). A
 * replay sends the recorded status, headers and body (or throws the recorded
 * error, rendered by the surface) with `Idempotent-Replayed: true`, and `fn`
 * does not run. Only the first write of a request uses the key.
 */
export async function runWrite<T>(
  request: FastifyRequest,
  reply: FastifyReply,
  fn: (tx: Tx) => Promise<WriteResult<T>>,
): Promise<T> {
  const { store, writes } = request.server.services;
  const beforeCommit = writes.beforeCommit;
  const keyed = idempotencyKeys.get(request);
  const organization = request.principal?.organization;

  if (!keyed || keyed.used || !organization) {
    const result = await retryingConflicts(() =>
      store.transaction(async (tx) => {
        const value = await fn(tx);
        await beforeCommit?.(request);
        return value;
      }),
    );
    reply.status(result.status);
    return result.body;
  }

  keyed.used = true;
  reply.header("idempotent-replayed", "false");
  const outcome = await retryingConflicts(() =>
    executeOnce(
      store,
      {
        organizationId: organization.id,
        key: keyed.key,
        fingerprint: fingerprintOf(request.method, fingerprintPath(request.url), request.body),
        requestId: request.id,
        waitMs: writes.idempotencyWaitMs,
      },
      async (tx) => {
        const result = await fn(tx);
        reply.status(result.status);
        const response: RecordedResponse = {
          kind: "response",
          status: result.status,
          headers: handlerHeaders(reply),
          body:
            result.body === undefined
              ? null
              : String(reply.serialize(withRequestId(request, reply, result.body))),
        };
        return { value: result, response };
      },
      beforeCommit ? async () => beforeCommit(request) : undefined,
    ),
  );
  if (!outcome.replayed) return outcome.value.body;
  return sendReplay(request, reply, outcome) as unknown as T;
}

const CONFLICT_ATTEMPTS = 3;

/**
 * Runs a transaction again when it lost a race the database reported (a unique
 * index taken meanwhile, a serialization failure, a deadlock, a busy SQLite
 * snapshot). The rerun sees the winner's committed rows, so the domain answers
 * as if the requests had been serial (e.g. 409 `contact_exists` with its id).
 */
async function retryingConflicts<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (attempt >= CONFLICT_ATTEMPTS || !isRetryableConflict(error)) throw error;
    }
  }
}

/**
 * Sends a recorded response again (or throws the recorded error, for the
 * surface's renderer) and returns the reply, which tells Fastify it is sent.
 */
function sendReplay(
  request: FastifyRequest,
  reply: FastifyReply,
  outcome: Extract<IdempotentOutcome<unknown>, { replayed: true }>,
): FastifyReply {
  const { record, originalRequestId } = outcome;
  request.log.info(
    { originalRequestId, status: record.status },
    "idempotent replay: the recorded response is sent again",
  );
  reply.header("idempotent-replayed", "true");
  reply.header("original-request-id", originalRequestId);
  if (record.kind === "error") throw errorFromRecord(record);
  reply.status(record.status);
  reply.headers(record.headers);
  if (record.body === null) {
    reply.send();
  } else {
    if (record.headers["content-type"] === undefined) reply.type("application/json; charset=utf-8");
    reply.send(withReplayRequestId(record.body, originalRequestId, request.id));
  }
  return reply;
}

declare module "fastify" {
  interface FastifyContextConfig {
    /** Set by `attachValidationOfPosts`: validation failures are attached by Fastify and rethrown by `validationFailureHook`. */
    phonebookRethrowValidation?: boolean;
  }
}

/**
 * onRoute hook (installed by `protect`): on POST routes, schema validation
 * failures are attached to the request instead of answered at once, so that
 * `validationFailureHook` can record them under the Idempotency-Key before
 * they are answered. Routes that attach validation themselves are left alone.
 */
export function attachValidationOfPosts(route: RouteOptions): void {
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  if (!methods.includes("POST") || route.attachValidation === true) return;
  route.attachValidation = true;
  route.config = { ...route.config, phonebookRethrowValidation: true };
  // First of the route's preHandlers, so a failed validation is answered (and recorded) before any other.
  route.preHandler = [validationFailureHook, ...[route.preHandler ?? []].flat()];
}

/**
 * preHandler of every protected POST route (put first by
 * `attachValidationOfPosts`): a POST that failed schema validation is answered with its 400
 * as before; with an Idempotency-Key the 400 is first recorded (or, for a
 * retry, replayed), like the 4xx a write raises. Validation comes before the
 * key's own rules (spec §2 order), so a key used for another request does not
 * turn this 400 into a 422, and nothing is recorded then.
 */
export async function validationFailureHook(request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const failure = request.validationError;
  if (!failure || request.routeOptions.config.phonebookRethrowValidation !== true) return undefined;
  const error = toApiError(failure);
  const keyed = idempotencyKeys.get(request);
  const organization = request.principal?.organization;
  // The original error goes on, so a surface's renderer sees what Fastify gave it.
  if (!keyed || keyed.used || !organization) throw failure;
  keyed.used = true;
  reply.header("idempotent-replayed", "false");
  let outcome: IdempotentOutcome<never>;
  try {
    outcome = await executeOnce<never>(
      request.server.services.store,
      {
        organizationId: organization.id,
        key: keyed.key,
        fingerprint: fingerprintOf(request.method, fingerprintPath(request.url), request.body),
        requestId: request.id,
        waitMs: request.server.services.writes.idempotencyWaitMs,
      },
      async () => {
        throw error;
      },
    );
  } catch (thrown) {
    if (thrown !== error && !(thrown instanceof ApiError && thrown.status < 500)) {
      request.log.warn({ err: thrown }, "could not record a validation failure under its Idempotency-Key");
    }
    throw failure;
  }
  if (!outcome.replayed) throw failure;
  return sendReplay(request, reply, outcome);
}
