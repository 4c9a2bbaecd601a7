import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import {
  type ContactInput,
  createContact,
  deleteContact,
  findContact,
  listContacts,
  metadataChange,
  resolveAccount,
  resolveContactFilters,
  updateContact,
} from "../../domain/contacts.ts";
import { canonicalScope, DEFAULT_LIMIT, pageOf } from "../../domain/pagination.ts";
import { ApiError } from "../../errors.ts";
import { scopeOf } from "../auth.ts";
import {
  DataEnvelope,
  Id,
  ListEnvelope,
  MetadataInput,
  NATIVE_ERROR_RESPONSES,
  PageQuery,
  QueryBoolean,
  Timestamp,
  WithRequestId,
} from "../schemas.ts";
import { runWrite } from "../write-transaction.ts";
import { ContactSchema, contactOut } from "./representation.ts";
import { contactIdInUuidForm, FromAccount, PATH_STYLES, pathAccountOf } from "./scope.ts";
import { resolveNativeFilters } from "./wire.ts";

const Name = Type.String({ maxLength: 256 });

export const ListQuery = Type.Object(
  {
    phone: Type.Optional(
      Type.String({ maxLength: 40, description: "Exact phone; formatting characters allowed" }),
    ),
    search: Type.Optional(
      Type.String({ description: "1–200 characters; substring of names, email or phone digits" }),
    ),
    label: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 60,
        description: "Contacts carrying this label: its id (lbl_…) or its name, case-insensitively",
      }),
    ),
    created_after: Type.Optional(Timestamp),
    created_before: Type.Optional(Timestamp),
    updated_after: Type.Optional(Timestamp),
    marketing_opt_out: Type.Optional(QueryBoolean()),
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
  metadata: Type.Optional(MetadataInput),
  business_scoped_user_id: Type.Optional(Type.String({ maxLength: 128 })),
  labels: Type.Optional(Type.Array(Id("lbl"), { maxItems: 100 })),
};

const UpdateBody = Type.Object(
  {
    name: Type.Optional(Type.Union([Name, Type.Null()])),
    email: Type.Optional(
      Type.Union([Type.String({ maxLength: 254 }), Type.Null()], { "x-error-code": "invalid_email" }),
    ),
    metadata: Type.Optional(MetadataInput),
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
  app.addHook("preValidation", contactIdInUuidForm);
  const { cursors } = app.services;
  const tags = ["contacts"];

  for (const style of PATH_STYLES) {
    const { base, suffix } = style;

    app.get(
      base,
      {
        schema: {
          tags,
          summary: `List and search contacts${suffix}`,
          params: style.params(),
          querystring: ListQuery,
          response: { 200: ListEnvelope(ContactSchema), ...NATIVE_ERROR_RESPONSES },
        },
      },
      async (request) => {
        const scope = scopeOf(request);
        const { limit: rawLimit, cursor, ...query } = request.query;
        const limit = rawLimit ?? DEFAULT_LIMIT;
        const account = await pathAccountOf(scope, request.params.phone_number_id);
        const filters = await resolveContactFilters(scope, account, await resolveNativeFilters(scope, query));
        const { organizationId, ...bound } = filters;
        const cursorScope = canonicalScope("native.contacts", organizationId, bound);
        const after = cursor === undefined ? undefined : cursors.decode(cursorScope, cursor);
        const rows = await listContacts(scope, filters, after, limit + 1);
        return pageOf(rows, limit, cursors, cursorScope, contactOut);
      },
    );

    app.post(
      base,
      {
        schema: {
          tags,
          summary: `Create a contact${suffix}`,
          params: style.params(),
          body: Type.Object(
            {
              ...CreateFields,
              ...style.orgLevelOnly({ from: FromAccount }),
            },
            { additionalProperties: false },
          ),
          response: { 201: DataEnvelope(ContactSchema), ...NATIVE_ERROR_RESPONSES },
        },
      },
      async (request, reply) => {
        const body = request.body;
        return runWrite(request, reply, async (tx) => {
          const txScope = scopeOf(request, tx);
          const account =
            (await pathAccountOf(txScope, request.params.phone_number_id)) ??
            (await resolveAccount(txScope, body.from));
          const contact = await createContact(txScope, account, createInput(body), "api");
          return { status: 201, body: { data: contactOut(contact) } };
        });
      },
    );

    const byId = `${base}/:id`;
    const idParams = style.params({ id: Id("ctc") });

    app.get(
      byId,
      {
        schema: {
          tags,
          summary: `Fetch a contact${suffix}`,
          description:
            "A merged-away id answers its survivor, with `merged_into` (the survivor's id) beside `data` (docs/merge.md).",
          params: idParams,
          response: {
            200: WithRequestId(
              Type.Object({
                data: ContactSchema,
                merged_into: Type.Optional(
                  Type.String({ description: "Set when the id asked for was merged into this contact" }),
                ),
              }),
            ),
            ...NATIVE_ERROR_RESPONSES,
          },
        },
      },
      async (request) => {
        const scope = scopeOf(request);
        const account = await pathAccountOf(scope, request.params.phone_number_id);
        const found = await findContact(scope, request.params.id, account?.id);
        return {
          data: contactOut(found.contact),
          ...(found.merged_into === undefined ? {} : { merged_into: found.merged_into }),
        };
      },
    );

    app.patch(
      byId,
      {
        schema: {
          tags,
          summary: `Update a contact${suffix}`,
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
        return runWrite(request, reply, async (tx) => {
          const txScope = scopeOf(request, tx);
          const account = await pathAccountOf(txScope, request.params.phone_number_id);
          const { contact } = await updateContact(
            txScope,
            request.params.id,
            {
              display_name: body.name,
              email: body.email,
              phone_number: body.phone_number,
              ...metadataChange(body.metadata),
            },
            account?.id,
          );
          return { status: 200, body: { data: contactOut(contact) } };
        });
      },
    );

    app.delete(
      byId,
      {
        schema: {
          tags,
          summary: `Delete a contact${suffix}`,
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
        const { id } = request.params;
        return runWrite(request, reply, async (tx) => {
          const txScope = scopeOf(request, tx);
          const account = await pathAccountOf(txScope, request.params.phone_number_id);
          await deleteContact(txScope, id, account?.id);
          return {
            status: 200,
            body: {
              data: { id, object: "contact" as const, deleted: true as const },
            },
          };
        });
      },
    );
  }
};
