import type { FastifyRequest } from "fastify";
import { Type } from "typebox";
import { toIso } from "../../domain/clock.ts";
import { parseStoredMetadata } from "../../domain/contact-fields.ts";
import type { ContactView } from "../../domain/contacts.ts";
import type { CustomerRow } from "../../domain/customers.ts";
import type { Keyset } from "../../domain/pagination.ts";
import { phoneDigits } from "../../domain/phone.ts";
import { contactUuid } from "../../ids.ts";
import { MetadataSchema } from "../native/representation.ts";
import { NullableString, Timestamp } from "../schemas.ts";
import { encodeKeysetCursor, kapsoCursorOrg } from "./pagination.ts";

/** The contact as Kapso's platform and graph surfaces show it (spec §4). */
export const KapsoContactSchema = Type.Object(
  {
    id: Type.String(),
    wa_id: NullableString(),
    business_scoped_user_id: NullableString(),
    parent_business_scoped_user_id: NullableString(),
    username: NullableString(),
    profile_name: NullableString(),
    display_name: NullableString(),
    customer_id: NullableString(),
    metadata: MetadataSchema,
    phone_number_id: Type.String(),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { title: "Kapso contact" },
);

/** Kapso writes six fractional digits (`2025-03-26T15:05:00.000000Z`); our clock has milliseconds. */
export function kapsoTime(ms: number): string {
  return `${toIso(ms).slice(0, -1)}000Z`;
}

export function kapsoContactOut(view: ContactView) {
  return {
    id: contactUuid(view.id),
    wa_id: phoneDigits(view.phone_number),
    business_scoped_user_id: view.business_scoped_user_id,
    parent_business_scoped_user_id: view.parent_business_scoped_user_id,
    username: view.username,
    profile_name: view.profile_name,
    display_name: view.display_name,
    customer_id: view.customer_id,
    metadata: parseStoredMetadata(view.metadata),
    phone_number_id: view.account_phone_number_id,
    created_at: kapsoTime(view.created_at),
    updated_at: kapsoTime(view.updated_at),
  };
}

export const CustomerSchema = Type.Object(
  {
    id: Type.String({ format: "uuid" }),
    name: Type.String(),
    external_customer_id: NullableString(),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { title: "Customer" },
);

export function customerOut(row: CustomerRow) {
  return {
    id: row.id,
    name: row.name,
    external_customer_id: row.external_customer_id,
    created_at: kapsoTime(row.created_at),
    updated_at: kapsoTime(row.updated_at),
  };
}

export const NullableCursor = Type.Union([Type.String(), Type.Null()]);

export const Cursors = Type.Object({ before: NullableCursor, after: NullableCursor });

/** `paging` of a cursor page: the cursors and, on the platform surface, full URLs of the neighbours. */
export const PlatformPaging = Type.Object({
  cursors: Cursors,
  next: NullableCursor,
  previous: NullableCursor,
});

export function cursorsOf(page: { before: Keyset | null; after: Keyset | null }, org?: string) {
  return {
    before: page.before ? encodeKeysetCursor(page.before, org) : null,
    after: page.after ? encodeKeysetCursor(page.after, org) : null,
  };
}

/**
 * The URL of this request with some query parameters replaced (undefined
 * removes one), as clients follow `next`, `previous` and `Link`: absolute on
 * the configured PUBLIC_URL, otherwise relative (path and query). Never built
 * from the request's Host or X-Forwarded-Host, which the client chooses.
 */
export function linkTo(request: FastifyRequest, changes: Record<string, string | undefined>): string {
  const url = new URL(request.url, "http://placeholder.invalid");
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) url.searchParams.delete(key);
    else url.searchParams.set(key, value);
  }
  const relative = `${url.pathname}${url.search}`;
  const base = request.server.services.config.publicUrl;
  return base === undefined ? relative : `${base}${relative}`;
}

export function platformPaging(
  request: FastifyRequest,
  page: { before: Keyset | null; after: Keyset | null },
) {
  const cursors = cursorsOf(page, kapsoCursorOrg(request));
  return {
    cursors,
    next: cursors.after ? linkTo(request, { after: cursors.after, before: undefined }) : null,
    previous: cursors.before ? linkTo(request, { before: cursors.before, after: undefined }) : null,
  };
}
