import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyReply, FastifyRequest } from "fastify";
import { Type } from "typebox";
import { requireAccountByPhoneNumberId } from "../../domain/accounts.ts";
import {
  type ContactInput,
  countContacts,
  createContact,
  deleteContact,
  findContactByIdentifier,
  findContactByIdentifierResolved,
  listContactsAtOffset,
  listContactsPage,
  metadataChange,
  resolveAccount,
  resolveContactFilters,
  type Scope,
  updateContact,
} from "../../domain/contacts.ts";
import { ApiError } from "../../errors.ts";
import { contactIdOf } from "../../ids.ts";
import { scopeOf } from "../auth.ts";
import { Limit, MetadataInput, PhoneNumberId, QueryBoolean, Timestamp } from "../schemas.ts";
import { runWrite } from "../write-transaction.ts";
import { PLATFORM_ERROR_RESPONSES } from "./errors.ts";
import {
  boundOf,
  kapsoCursorOrg,
  OFFSET_MAX_PAGE,
  OFFSET_MAX_PER_PAGE,
  OFFSET_MAX_WINDOW,
  offsetWindow,
} from "./pagination.ts";
import {
  KapsoContactSchema,
  kapsoContactOut,
  linkTo,
  PlatformPaging,
  platformPaging,
} from "./representation.ts";
import { kapsoFilters } from "./wire.ts";

export const PLATFORM_DEFAULT_LIMIT = 20;

const Name = Type.Union([Type.String({ maxLength: 256 }), Type.Null()]);
const CustomerId = Type.Union([
  Type.String({ maxLength: 64, description: "A customer's UUID" }),
  Type.Null(),
]);

const ListQuery = Type.Object(
  {
    customer_id: Type.Optional(Type.String({ maxLength: 64, description: "Linked to this customer (UUID)" })),
    customer_external_id: Type.Optional(
      Type.String({ maxLength: 256, description: "Linked to the customer with this external_customer_id" }),
    ),
    has_customer: Type.Optional(QueryBoolean()),
    profile_name_contains: Type.Optional(
      Type.String({ description: "Case-insensitive substring of profile_name" }),
    ),
    wa_id_contains: Type.Optional(Type.String({ description: "Substring of the wa_id digits" })),
    business_scoped_user_id: Type.Optional(Type.String({ description: "Exact BSUID" })),
    phone_number_id: Type.Optional(PhoneNumberId()),
    created_after: Type.Optional(Timestamp),
    created_before: Type.Optional(Timestamp),
    limit: Type.Optional(Limit(100, PLATFORM_DEFAULT_LIMIT, "Cursor mode: 1–100, default 20")),
    after: Type.Optional(
      Type.String({ description: "Cursor mode: paging.cursors.after of the previous page" }),
    ),
    before: Type.Optional(
      Type.String({ description: "Cursor mode: paging.cursors.before of the next page" }),
    ),
    page: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: "Offset mode (deprecated): page ≥ 1, at most 50",
        "x-error-message": "must be a whole number from 1",
      }),
    ),
    per_page: Type.Optional(
      Limit(OFFSET_MAX_PER_PAGE, PLATFORM_DEFAULT_LIMIT, "Offset mode (deprecated): 1–100, default 20"),
    ),
  },
  { additionalProperties: false },
);

const ContactFields = {
  wa_id: Type.Optional(Type.String({ maxLength: 40, description: "Phone, E.164 with or without +" })),
  profile_name: Type.Optional(Name),
  display_name: Type.Optional(Name),
  customer_id: Type.Optional(CustomerId),
  metadata: Type.Optional(MetadataInput),
};

const CreateBody = Type.Object(
  {
    contact: Type.Object(
      {
        ...ContactFields,
        wa_id: Type.String({ maxLength: 40 }),
        phone_number_id: Type.Optional(PhoneNumberId()),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

const UpdateBody = Type.Object(
  { contact: Type.Object(ContactFields, { additionalProperties: false }) },
  { additionalProperties: false },
);

const IdentifierParams = Type.Object({
  identifier: Type.String({
    maxLength: 200,
    description: "Contact id, phone (with or without +, URL-encoded), BSUID or parent BSUID (newest match)",
  }),
});
const IdentifierQuery = Type.Object(
  { phone_number_id: Type.Optional(PhoneNumberId()) },
  { additionalProperties: false },
);

type ContactBody = {
  wa_id?: string | undefined;
  profile_name?: string | null | undefined;
  display_name?: string | null | undefined;
  customer_id?: string | null | undefined;
  metadata?: Record<string, unknown> | null | undefined;
};

/** Kapso's contact fields → the domain's ContactInput. */
function contactInput(body: ContactBody): ContactInput {
  return {
    phone_number: body.wa_id,
    profile_name: body.profile_name,
    display_name: body.display_name,
    customer_id: body.customer_id,
    ...metadataChange(body.metadata),
  };
}

const CURSOR_EXAMPLE = "/platform/v1/whatsapp/contacts?limit=100&after=<paging.cursors.after>";

/** `/platform/v1/whatsapp/contacts…` (Kapso's platform API), over the same domain as `/v1`. */
export const platformContactRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ["platform"];
  const accountOf = async (scope: Scope, phoneNumberId: string | undefined) =>
    phoneNumberId === undefined
      ? undefined
      : await requireAccountByPhoneNumberId(scope.db, scope.organizationId, phoneNumberId);

  app.get(
    "/contacts",
    {
      schema: {
        tags,
        summary: "List contacts (cursor mode, or deprecated offset mode with page/per_page)",
        description:
          "Without any paging parameter the answer is Kapso's documented first page: `meta` " +
          "{ page: 1, per_page: 20, total_pages, total_count } and `paging` beside it, so cursor clients go on with " +
          "paging.cursors.after. total_count is a maintained count (constant time) unless filters other than " +
          'phone_number_id are given, when it is counted exactly. In offset mode X-Total-Pages and Link rel="last" ' +
          "name the last page reachable inside the 5,000-row window. Links are absolute on PUBLIC_URL, otherwise relative.",
        querystring: ListQuery,
        response: {
          200: Type.Union([
            Type.Object({ data: Type.Array(KapsoContactSchema), meta: OffsetMeta, paging: PlatformPaging }),
            Type.Object({ data: Type.Array(KapsoContactSchema), paging: PlatformPaging }),
            Type.Object({ data: Type.Array(KapsoContactSchema), meta: OffsetMeta }),
          ]),
          ...PLATFORM_ERROR_RESPONSES,
        },
      },
    },
    async (request, reply) => {
      const scope = scopeOf(request);
      const { limit: rawLimit, after, before, page, per_page, phone_number_id, ...query } = request.query;
      const offsetMode = page !== undefined || per_page !== undefined;
      if (offsetMode && (rawLimit !== undefined || after !== undefined || before !== undefined)) {
        throw new ApiError(
          "invalid_field_value",
          "page/per_page (offset mode) cannot be combined with limit, after or before (cursor mode).",
          { param: rawLimit !== undefined ? "limit" : after !== undefined ? "after" : "before" },
        );
      }
      const filters = await resolveContactFilters(
        scope,
        await accountOf(scope, phone_number_id),
        kapsoFilters(query),
      );
      if (offsetMode) {
        const window = offsetWindow(page, per_page, PLATFORM_DEFAULT_LIMIT, CURSOR_EXAMPLE);
        const { rows, total } = await listContactsAtOffset(scope, filters, window.offset, window.perPage);
        return offsetPage(request, reply, rows.map(kapsoContactOut), window.page, window.perPage, total);
      }
      const limit = rawLimit ?? PLATFORM_DEFAULT_LIMIT;
      const result = await listContactsPage(
        scope,
        filters,
        boundOf(after, before, kapsoCursorOrg(request)),
        limit,
      );
      const data = result.rows.map(kapsoContactOut);
      const paging = platformPaging(request, result);
      if (rawLimit === undefined && after === undefined && before === undefined) {
        // Kapso's documented answer to a bare list: page 1 of 20, with totals.
        const total = await countContacts(scope, filters);
        const meta = {
          page: 1,
          per_page: limit,
          total_pages: Math.ceil(total / limit),
          total_count: total,
        };
        return { data, meta, paging };
      }
      return { data, paging };
    },
  );

  app.post(
    "/contacts",
    {
      schema: {
        tags,
        summary: "Create a contact",
        description:
          "Body `{ contact: { wa_id, profile_name?, display_name?, customer_id?, metadata?, phone_number_id? } }`. " +
          "Without phone_number_id the organisation's only connected number is used. A duplicate is 422.",
        body: CreateBody,
        response: { 201: Type.Object({ data: KapsoContactSchema }), ...PLATFORM_ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const _scope = scopeOf(request);
      const { phone_number_id, ...fields } = request.body.contact;
      return runWrite(request, reply, async (tx) => {
        const txScope = scopeOf(request, tx);
        const account = await resolveAccount(txScope, phone_number_id, "phone_number_id");
        const contact = await createContact(txScope, account, contactInput(fields), "api");
        return { status: 201, body: { data: kapsoContactOut(contact) } };
      });
    },
  );

  app.get(
    "/contacts/:identifier",
    {
      schema: {
        tags,
        summary: "Fetch a contact by id, phone, BSUID or parent BSUID",
        params: IdentifierParams,
        querystring: IdentifierQuery,
        response: {
          200: Type.Object({ data: KapsoContactSchema, merged_into: Type.Optional(Type.String()) }),
          ...PLATFORM_ERROR_RESPONSES,
        },
      },
    },
    async (request) => {
      const scope = scopeOf(request);
      const account = await accountOf(scope, request.query.phone_number_id);
      const found = await findContactByIdentifierResolved(
        scope,
        contactIdOf(request.params.identifier),
        account,
      );
      const data = kapsoContactOut(found.contact);
      // A merged-away identifier answers its survivor and says so (docs/merge.md).
      return found.merged_into === undefined ? { data } : { data, merged_into: data.id };
    },
  );

  app.patch(
    "/contacts/:identifier",
    {
      schema: {
        tags,
        summary: "Update a contact",
        description:
          "Body `{ contact: { wa_id?, profile_name?, display_name?, customer_id?, metadata? } }`; metadata merges " +
          "(a key set to null is removed; null clears all); customer_id null unlinks.",
        params: IdentifierParams,
        querystring: IdentifierQuery,
        body: UpdateBody,
        response: { 200: Type.Object({ data: KapsoContactSchema }), ...PLATFORM_ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const fields = request.body.contact;
      if (Object.keys(fields).length === 0) {
        throw new ApiError(
          "missing_required_field",
          "Give at least one of wa_id, profile_name, display_name, customer_id, metadata.",
          { param: "contact" },
        );
      }
      const _scope = scopeOf(request);
      return runWrite(request, reply, async (tx) => {
        const txScope = scopeOf(request, tx);
        const account = await accountOf(txScope, request.query.phone_number_id);
        const found = await findContactByIdentifier(txScope, contactIdOf(request.params.identifier), account);
        const { contact } = await updateContact(txScope, found.id, contactInput(fields));
        return { status: 200, body: { data: kapsoContactOut(contact) } };
      });
    },
  );

  app.delete(
    "/contacts/:identifier",
    {
      schema: {
        tags,
        summary: "Delete a contact (204)",
        params: IdentifierParams,
        querystring: IdentifierQuery,
        response: { 204: Type.Null(), ...PLATFORM_ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const _scope = scopeOf(request);
      await runWrite(request, reply, async (tx) => {
        const txScope = scopeOf(request, tx);
        const account = await accountOf(txScope, request.query.phone_number_id);
        const found = await findContactByIdentifier(txScope, contactIdOf(request.params.identifier), account);
        await deleteContact(txScope, found.id);
        return { status: 204, body: null };
      });
      return reply.send(null);
    },
  );
};

/** The deprecated offset page: `meta` in the body, totals and RFC 8288 links in headers. */
const OffsetMeta = Type.Object({
  page: Type.Integer(),
  per_page: Type.Integer(),
  total_pages: Type.Integer({ description: "ceil(total_count / per_page)" }),
  total_count: Type.Integer(),
});

/** The last page offset mode can reach at this page size (the window is 50 pages and 5,000 rows). */
export function lastReachablePage(perPage: number): number {
  return Math.min(OFFSET_MAX_PAGE, Math.floor(OFFSET_MAX_WINDOW / perPage));
}

function offsetPage<T>(
  request: FastifyRequest,
  reply: FastifyReply,
  data: T[],
  page: number,
  perPage: number,
  total: number,
) {
  const totalPages = Math.ceil(total / perPage);
  // Headers and links point only at pages a client can fetch: past the
  // window a page is 400, so "last" is the last reachable one.
  const lastPage = Math.max(1, Math.min(totalPages, lastReachablePage(perPage)));
  const link = (n: number) => linkTo(request, { page: String(n), per_page: String(perPage) });
  const links = [`<${link(1)}>; rel="first"`];
  if (page > 1) links.push(`<${link(Math.min(page - 1, lastPage))}>; rel="prev"`);
  if (page < lastPage) links.push(`<${link(page + 1)}>; rel="next"`);
  links.push(`<${link(lastPage)}>; rel="last"`);
  reply.headers({
    "x-total": String(total),
    "x-total-pages": String(Math.min(totalPages, lastPage)),
    "x-per-page": String(perPage),
    "x-page": String(page),
    link: links.join(", "),
  });
  return { data, meta: { page, per_page: perPage, total_pages: totalPages, total_count: total } };
}
