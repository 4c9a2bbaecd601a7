import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Authenticator, Principal } from "../domain/auth.ts";
import { ApiError } from "../errors.ts";

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

/**
 * Puts every route registered on `app` (an encapsulated plugin context) behind
 * API-key authentication. Every surface calls this once for its protected
 * routes, so whatever applies to authenticated requests (rate limits) is added
 * here, once.
 */
export function protect(app: FastifyInstance): void {
  app.addHook("onRequest", apiKeyHook(app.services.authenticator));
}
