import type { FastifyReply, FastifyRequest, RouteOptions } from "fastify";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Set by `requestIdOnRoute`: this route's success bodies carry `request_id`. */
    requestIdInBody?: boolean;
  }
}

function declaresRequestId(schema: unknown): boolean {
  if (typeof schema !== "object" || schema === null) return false;
  const properties: unknown = Reflect.get(schema, "properties");
  return typeof properties === "object" && properties !== null && "request_id" in properties;
}

/**
 * onRoute hook (installed once in `buildApp`): a route whose success response
 * schema declares `request_id` (the native, admin and webhook surfaces;
 * `WithRequestId` in http/schemas.ts) has it added to every success body
 * here, instead of by each handler. Error bodies carry theirs in the error
 * envelope (their renderer); Kapso's and Meta's shapes have none.
 */
export function requestIdOnRoute(route: RouteOptions): void {
  const responses = route.schema?.response;
  if (typeof responses !== "object" || responses === null) return;
  const declared = Object.entries(responses).some(
    ([status, schema]) => !/^[45]/.test(status) && declaresRequestId(schema),
  );
  if (!declared) return;
  route.config = { ...route.config, requestIdInBody: true };
  route.preSerialization = [...[route.preSerialization ?? []].flat(), addRequestId];
}

function addRequestId(
  request: FastifyRequest,
  reply: FastifyReply,
  payload: unknown,
  done: (error: null, payload: unknown) => void,
): void {
  done(null, withRequestId(request, reply, payload));
}

/**
 * A success body as it is sent: with the request's `request_id` when its
 * route declares one. The write path records bodies with it too, so that a
 * replay names the replaying request (http/write-transaction.ts).
 */
export function withRequestId<T>(request: FastifyRequest, reply: FastifyReply, body: T): T {
  if (
    request.routeOptions.config.requestIdInBody !== true ||
    reply.statusCode >= 400 ||
    typeof body !== "object" ||
    body === null ||
    Array.isArray(body)
  ) {
    return body;
  }
  return { ...body, request_id: request.id };
}
