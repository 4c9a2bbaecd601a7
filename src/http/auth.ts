import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Authenticator, Principal } from "../domain/auth.ts";
import type { Scope } from "../domain/contacts.ts";
import { rateLimitsOf } from "../domain/organizations.ts";
import { ApiError } from "../errors.ts";
import type { BucketKind, RateLimiter } from "../rate-limit/rate-limiter.ts";
import type { Executor } from "../store/store.ts";
import { attachValidationOfPosts, idempotencyKeyHook } from "./write-transaction.ts";

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | undefined;
  }
}

/** The key from `Authorization: Bearer <key>` or `X-API-Key: <key>`, and the header it came from. */
export function presentedKey(request: FastifyRequest): { key: string | undefined; param: string } {
  const authorization = request.headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer(?:\s+(\S*))?\s*$/i.exec(authorization);
    // Anything other than "Bearer <key>" is passed on as-is and fails as an invalid key.
    return { key: match ? match[1] || undefined : authorization, param: "Authorization" };
  }
  const header = request.headers["x-api-key"];
  return { key: Array.isArray(header) ? header[0] : header, param: "X-API-Key" };
}

/** A preHandler-style hook that authenticates the request or throws a 401 ApiError. */
export function apiKeyHook(authenticator: Authenticator) {
  return async function authenticate(request: FastifyRequest): Promise<void> {
    const { key, param } = presentedKey(request);
    request.principal = await authenticator.authenticate(key, param);
  };
}

/** The authenticated principal; only called on routes behind `apiKeyHook`. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new ApiError("missing_api_key", "No API key was given.");
  return request.principal;
}

/** The domain scope of an authenticated request: its organisation, on `db` (a transaction) or the store. */
export function scopeOf(request: FastifyRequest, db: Executor = request.server.services.store.db): Scope {
  return {
    db,
    organizationId: principalOf(request).organization.id,
  };
}

/** GET and HEAD (and OPTIONS) read; everything else writes. */
export function bucketOf(method: string): BucketKind {
  return method === "GET" || method === "HEAD" || method === "OPTIONS" ? "read" : "write";
}

/**
 * Takes a token from the organisation's read or write bucket. Every response
 * after authentication carries the X-RateLimit-* headers (errors included);
 * an empty bucket is 429 `rate_limit_exceeded` with Retry-After.
 */
export function rateLimitHook(limiter: RateLimiter) {
  return async function rateLimit(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { organization } = principalOf(request);
    const kind = bucketOf(request.method);
    const limits = rateLimitsOf(organization);
    const limit = kind === "read" ? limits.read_per_minute : limits.write_per_minute;
    const decision = await limiter.take(`${organization.id}:${kind}`, limit);
    reply.header("x-ratelimit-limit", String(decision.limit));
    reply.header("x-ratelimit-remaining", String(decision.remaining));
    reply.header("x-ratelimit-reset", String(decision.resetAt));
    if (!decision.allowed) {
      throw new ApiError(
        "rate_limit_exceeded",
        `Too many ${kind} requests for this organization: ${decision.limit} per minute. Retry after ${decision.retryAfter} s.`,
        { headers: { "retry-after": String(decision.retryAfter) } },
      );
    }
  };
}

/**
 * Puts every route registered on `app` (an encapsulated plugin context) behind
 * API-key authentication. Every surface calls this once for its protected
 * routes, so whatever applies to authenticated requests is added here, once,
 * in the order of checks of spec §2: authentication (401) → rate limit (429)
 * → the Idempotency-Key header (400) → the route's own validation.
 */
export function protect(app: FastifyInstance): void {
  const authenticate = apiKeyHook(app.services.authenticator);
  const rateLimit = rateLimitHook(app.services.rateLimiter);
  // One hook for the three checks (a hook per check cost a promise and a turn each).
  app.addHook("onRequest", async (request, reply) => {
    await authenticate(request);
    await rateLimit(request, reply);
    idempotencyKeyHook(request);
  });
  app.addHook("onRoute", documentIdempotencyKey);
  // POST routes only: validation failures are recorded under the Idempotency-Key.
  app.addHook("onRoute", attachValidationOfPosts);
}

const IDEMPOTENCY_KEY_HEADER = {
  type: "string",
  minLength: 1,
  maxLength: 255,
  pattern: "^[\\x20-\\x7e]+$",
  description:
    "Makes the POST safe to retry: the same key (per organisation, kept 24 h) with the same request returns the recorded response with Idempotent-Replayed: true. See docs/idempotency-and-rate-limits.md.",
};

/** Declares `Idempotency-Key` on every POST route of a protected context, so the OpenAPI document shows it. */
function documentIdempotencyKey(route: {
  method: string | string[];
  schema?: Record<string, unknown>;
}): void {
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  if (!methods.includes("POST")) return;
  route.schema ??= {};
  const headers = (route.schema.headers ?? { type: "object" }) as { properties?: Record<string, unknown> };
  route.schema.headers = {
    ...headers,
    properties: { ...headers.properties, "idempotency-key": IDEMPOTENCY_KEY_HEADER },
  };
}
