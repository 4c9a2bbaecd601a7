import type { FastifyReply } from "fastify";
import { Type } from "typebox";
import type { ApiError, ErrorCode } from "../../errors.ts";
import { contactUuid, isId } from "../../ids.ts";

/** Kapso answers a duplicate with 422 (Rails' "has already been taken"), not 409. */
const UNPROCESSABLE: ReadonlySet<ErrorCode> = new Set(["contact_exists", "customer_exists"]);

/**
 * The platform surface's error shape (spec §4): `{ "error": "<message>",
 * "code": "<stable code>" }`, plus `existing_id` on a duplicate. The offset
 * window error has its own documented body:
 * `{ message: "legacy_offset_pagination_limit_exceeded", detail, requested_page, … }`.
 */
export function renderPlatformError(error: ApiError, reply: FastifyReply): Record<string, unknown> {
  if (error.code === "legacy_offset_pagination_limit_exceeded") {
    return { message: error.code, detail: error.message, ...error.extra };
  }
  if (UNPROCESSABLE.has(error.code)) reply.status(422);
  const extra = { ...error.extra };
  // A contact id is shown in its UUID form on this surface, in errors too.
  if (typeof extra.existing_id === "string" && isId("ctc", extra.existing_id)) {
    extra.existing_id = contactUuid(extra.existing_id);
  }
  return { error: error.message, code: error.code, ...extra };
}

export const PlatformErrorBody = Type.Object(
  {
    error: Type.Optional(Type.String()),
    code: Type.Optional(Type.String()),
    existing_id: Type.Optional(Type.String()),
  },
  { additionalProperties: true, title: "Platform error" },
);

/** Error responses every platform route can give, for serialization and OpenAPI. */
export const PLATFORM_ERROR_RESPONSES = {
  400: PlatformErrorBody,
  401: PlatformErrorBody,
  404: PlatformErrorBody,
  405: PlatformErrorBody,
  409: PlatformErrorBody,
  413: PlatformErrorBody,
  415: PlatformErrorBody,
  422: PlatformErrorBody,
  429: PlatformErrorBody,
  500: PlatformErrorBody,
  503: PlatformErrorBody,
} as const;
