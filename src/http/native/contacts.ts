import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { METADATA_DESCRIPTION } from "../../domain/contact-fields.ts";
import {
  type ContactInput,
  contactFilters,
  createContact,
  deleteContact,
  getContact,
  listContacts,
  resolveAccount,
  updateContact,
} from "../../domain/contacts.ts";
import { canonicalScope, pageOf, parseLimit } from "../../domain/pagination.ts";
import { ApiError } from "../../errors.ts";
import { contactIdOf, isUuid } from "../../ids.ts";
import { DataEnvelope, Id, ListEnvelope, NATIVE_ERROR_RESPONSES, PageQuery, Timestamp } from "../schemas.ts";
import { runWrite } from "../write.ts";
import { ContactSchema, contactOut } from "./contact-representation.ts";
import { pathAccountOf, scopeOf } from "./scope.ts";
import { nativeFilters } from "./wire.ts";

const PhoneNumberId = Type.String({
  pattern: "^\\d{6,20}$",
  description: "Meta phone_number_id of one of your accounts",
});
const LooseObject = Type.Unsafe<Record<string, unknown>>({
  type: "object",
  "x-error-code": "invalid_metadata",
  description: METADATA_DESCRIPTION,
});
const Metadata = Type.Union([LooseObject, Type.Null()], { "x-error-code": "invalid_metadata" });
const Name = Type.String({ maxLength: 256 });

export const ListQuery = Type.Object(
  {
    phone: Type.Optional(
      Type.String({ maxLength: 40, description: "Exact phone; formatting characters allowed" }),
    ),
    search: Type.Optional(
      Type.String({ description: "1–200 characters; substring of names, email or phone digits" }),
    ),
    label: Type.Optional(Id("lbl", "Contacts carrying this label")),
    created_after: Type.Optional(Timestamp),
    created_before: Type.Optional(Timestamp),
    updated_after: Type.Optional(Timestamp),
    marketing_opt_out: Type.Optional(Type.Union([Type.Literal("true"), Type.Literal("false")])),
    ...PageQuery,
  },
  { additionalProperties: false },
);

const CreateFields = {
  phone_number: Type.Optional(Type.String({ maxLength: 40 })),
  name: Type.Optional(Name),
  email: Type.Optional(
    Type.Union([Type.String({ maxLength: 254 }), Type.Null()], { "x-error-code": "invalid_email" }),
  ),
  metadata: Type.Optional(Metadata),
  business_scoped_user_id: Type.Optional(Type.String({ maxLength: 128 })),
  labels: Type.Optional(Type.Array(Id("lbl"), { maxItems: 100 })),
};

const UpdateBody = Type.Object(
  {
    name: Type.Optional(Type.Union([Name, Type.Null()])),
    email: Type.Optional(
      Type.Union([Type.String({ maxLength: 254 }), Type.Null()], { "x-error-code": "invalid_email" }),
    ),
    metadata: Type.Optional(Metadata),
    phone_number: Type.Optional(Type.String({ maxLength: 40 })),
  },
  { additionalProperties: false },
);

function createInput(body: {
  phone_number?: string | undefined;
  name?: string | undefined;
  email?: string | null | undefined;
  metadata?: Record<string, unknown> | null | undefined;
  business_scoped_user_id?: string | undefined;
  labels?: string[] | undefined;
}): ContactInput {
  return {
    phone_number: body.phone_number,
    display_name: body.name,
    email: body.email,
    metadata: body.metadata ?? undefined,
    business_scoped_user_id: body.business_scoped_user_id,
    label_ids: body.labels,
  };
}

/**
 * Contacts in both kirim.chat path styles: org-level (`/contacts…`, create
 * names its account with `from`) and account-scoped
 * (`/:phone_number_id/contacts…`). Both call the same domain functions.
 */
export const contactRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // A contact id may be given in its UUID form (as the Kapso surfaces show it): read as `ctc_<ULID>`.
  app.addHook("preValidation", (request, _reply, done) => {
    const params = request.params as { id?: string };
    if (typeof params.id === "string" && isUuid(params.id)) params.id = contactIdOf(params.id);
    done();
  });
  const { cursors } = app.services;
  const tags = ["contacts"];

  const accountOf = pathAccountOf;

  for (const scoped of [false, true]) {
    const base = scoped ? "/:phone_number_id/contacts" : "/contacts";
    const pathParams: Record<string, typeof PhoneNumberId> = scoped ? { phone_number_id: PhoneNumberId } : {};
    const summarySuffix = scoped ? " (one account)" : "";

    app.get(
      base,
      {
        schema: {
          tags,
          summary: `List and search contacts${summarySuffix}`,
          params: Type.Object(pathParams),
          querystring: ListQuery,
          response: { 200: ListEnvelope(ContactSchema), ...NATIVE_ERROR_RESPONSES },
        },
      },
      async (request) => {
        const scope = scopeOf(request);
        const { limit: rawLimit, cursor, ...query } = request.query;
        const limit = parseLimit(rawLimit);
        const account = await accountOf(request, scope);
        const filters = contactFilters(scope.organizationId, account?.id, nativeFilters(query));
        const { organizationId, ...bound } = filters;
        const cursorScope = canonicalScope("native.contacts", organizationId, bound);
        const after = cursor === undefined ? undefined : cursors.decode(cursorScope, cursor);
        const rows = await listContacts(scope, filters, after, limit + 1);
        return { ...pageOf(rows, limit, cursors, cursorScope, contactOut), request_id: request.id };
      },
    );

    app.post(
      base,
      {
        schema: {
          tags,
          summary: `Create a contact${summarySuffix}`,
          params: Type.Object(pathParams),
          body: Type.Object(
            scoped
              ? CreateFields
              : {
                  ...CreateFields,
                  from: Type.Optional(
                    Type.String({
                      maxLength: 40,
                      description: "The account: its E.164 number or phone_number_id",
                    }),
                  ),
                },
            { additionalProperties: false },
          ),
          response: { 201: DataEnvelope(ContactSchema), ...NATIVE_ERROR_RESPONSES },
        },
      },
      async (request, reply) => {
        const scope = scopeOf(request);
        const body = request.body as Parameters<typeof createInput>[0] & { from?: string };
        return runWrite(request, reply, async (tx) => {
          const txScope = { ...scope, db: tx };
          const account = (await accountOf(request, txScope)) ?? (await resolveAccount(txScope, body.from));
          const contact = await createContact(txScope, account, createInput(body), "api");
          return { status: 201, body: { data: contactOut(contact), request_id: request.id } };
        });
      },
    );

    const byId = `${base}/:id`;
    const idParams = Type.Object({ ...pathParams, id: Id("ctc") });

    app.get(
      byId,
      {
        schema: {
          tags,
          summary: `Fetch a contact${summarySuffix}`,
          params: idParams,
          response: { 200: DataEnvelope(ContactSchema), ...NATIVE_ERROR_RESPONSES },
        },
      },
      async (request) => {
        const scope = scopeOf(request);
        const account = await accountOf(request, scope);
        const contact = await getContact(scope, (request.params as { id: string }).id, account?.id);
        return { data: contactOut(contact), request_id: request.id };
      },
    );

    app.patch(
      byId,
      {
        schema: {
          tags,
          summary: `Update a contact${summarySuffix}`,
          description:
            "Any of name (sets display_name), email, metadata (merged; a key set to null is removed; null clears all), phone_number.",
          params: idParams,
          body: UpdateBody,
          response: { 200: DataEnvelope(ContactSchema), ...NATIVE_ERROR_RESPONSES },
        },
      },
      async (request, reply) => {
        const body = request.body;
        if (Object.keys(body).length === 0) {
          throw new ApiError(
            "missing_required_field",
            "Give at least one of name, email, metadata, phone_number.",
          );
        }
        const scope = scopeOf(request);
        return runWrite(request, reply, async (tx) => {
          const txScope = { ...scope, db: tx };
          const account = await accountOf(request, txScope);
          const { contact } = await updateContact(
            txScope,
            (request.params as { id: string }).id,
            {
              display_name: body.name,
              email: body.email,
              phone_number: body.phone_number,
              metadata: body.metadata ?? undefined,
              replace_metadata: body.metadata === null ? true : undefined,
            },
            account?.id,
          );
          return { status: 200, body: { data: contactOut(contact), request_id: request.id } };
        });
      },
    );

    app.delete(
      byId,
      {
        schema: {
          tags,
          summary: `Delete a contact${summarySuffix}`,
          params: idParams,
          response: {
            200: DataEnvelope(
              Type.Object({
                id: Type.String(),
                object: Type.Literal("contact"),
                deleted: Type.Literal(true),
              }),
            ),
            ...NATIVE_ERROR_RESPONSES,
          },
        },
      },
      async (request, reply) => {
        const scope = scopeOf(request);
        const id = (request.params as { id: string }).id;
        return runWrite(request, reply, async (tx) => {
          const txScope = { ...scope, db: tx };
          const account = await accountOf(request, txScope);
          await deleteContact(txScope, id, account?.id);
          return {
            status: 200,
            body: {
              data: { id, object: "contact" as const, deleted: true as const },
              request_id: request.id,
            },
          };
        });
      },
    );
  }
};
