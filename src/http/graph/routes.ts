import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { requireAccountByPhoneNumberId } from "../../domain/accounts.ts";
import {
  findContactByIdentifier,
  findContactByIdentifierResolved,
  listContactsPage,
  metadataChange,
  resolveContactFilters,
  updateContact,
} from "../../domain/contacts.ts";
import { ApiError } from "../../errors.ts";
import { contactIdOf } from "../../ids.ts";
import { protect, scopeOf } from "../auth.ts";
import { PLATFORM_DEFAULT_LIMIT } from "../platform/contacts.ts";
import { boundOf, kapsoCursorOrg } from "../platform/pagination.ts";
import { Cursors, cursorsOf, KapsoContactSchema, kapsoContactOut } from "../platform/representation.ts";
import { kapsoFilters } from "../platform/wire.ts";
import { Limit, MetadataInput, PhoneNumberId, QueryBoolean } from "../schemas.ts";
import { runWrite } from "../write-transaction.ts";
import { GRAPH_ERROR_RESPONSES } from "./errors.ts";

const AccountParams = {
  version: Type.String({ pattern: "^v\\d+\\.\\d+$", description: "Any Graph version, e.g. v23.0" }),
  phone_number_id: PhoneNumberId("Meta phone_number_id of the account"),
};
const ContactParams = Type.Object({
  ...AccountParams,
  wa_id: Type.String({
    maxLength: 200,
    description: "wa_id (phone without +); a BSUID or contact id works too",
  }),
});

/**
 * The graph surface (`/meta/whatsapp/{version}/{phone_number_id}/contacts`):
 * Kapso's Meta-proxy contacts extension, as `@kapso/whatsapp-cloud-api`'s
 * `client.contacts` calls it. Scoped to the account in the path.
 */
export const graphRoutes: FastifyPluginAsyncTypebox = async (app) => {
  protect(app);
  const tags = ["graph"];

  app.get(
    "/:version/:phone_number_id/contacts",
    {
      schema: {
        tags,
        summary: "List the account's contacts",
        params: Type.Object(AccountParams),
        querystring: Type.Object(
          {
            wa_id: Type.Optional(Type.String({ maxLength: 40, description: "Exact wa_id" })),
            customer_id: Type.Optional(Type.String({ maxLength: 64 })),
            has_customer: Type.Optional(QueryBoolean()),
            limit: Type.Optional(Limit(100, PLATFORM_DEFAULT_LIMIT)),
            after: Type.Optional(Type.String()),
            before: Type.Optional(Type.String()),
            fields: Type.Optional(Type.String({ description: "Accepted and ignored" })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            data: Type.Array(KapsoContactSchema),
            paging: Type.Object({ cursors: Cursors }),
          }),
          ...GRAPH_ERROR_RESPONSES,
        },
      },
    },
    async (request) => {
      const scope = scopeOf(request);
      const { limit, after, before, fields: _ignored, ...query } = request.query;
      const account = await requireAccountByPhoneNumberId(
        scope.db,
        scope.organizationId,
        request.params.phone_number_id,
      );
      const filters = await resolveContactFilters(scope, account, kapsoFilters(query));
      const page = await listContactsPage(
        scope,
        filters,
        boundOf(after, before, kapsoCursorOrg(request)),
        limit ?? PLATFORM_DEFAULT_LIMIT,
      );
      return {
        data: page.rows.map(kapsoContactOut),
        paging: { cursors: cursorsOf(page, kapsoCursorOrg(request)) },
      };
    },
  );

  app.get(
    "/:version/:phone_number_id/contacts/:wa_id",
    {
      schema: {
        tags,
        summary: "Fetch a contact by wa_id (the bare object)",
        params: ContactParams,
        response: {
          200: Type.Object({
            ...KapsoContactSchema.properties,
            merged_into: Type.Optional(
              Type.String({ description: "Set when wa_id led to a merged-away contact" }),
            ),
          }),
          ...GRAPH_ERROR_RESPONSES,
        },
      },
    },
    async (request) => {
      const scope = scopeOf(request);
      const account = await requireAccountByPhoneNumberId(
        scope.db,
        scope.organizationId,
        request.params.phone_number_id,
      );
      const found = await findContactByIdentifierResolved(
        scope,
        contactIdOf(request.params.wa_id),
        account,
        "wa_id",
      );
      // A merged-away identity answers its survivor and says so (docs/merge.md).
      const out = kapsoContactOut(found.contact);
      return found.merged_into === undefined ? out : { ...out, merged_into: out.id };
    },
  );

  app.patch(
    "/:version/:phone_number_id/contacts/:wa_id",
    {
      schema: {
        tags,
        summary: "Update a contact",
        description:
          "Flat body: any of profile_name, display_name, metadata (merged; a key set to null is removed; null clears all).",
        params: ContactParams,
        body: Type.Object(
          {
            profile_name: Type.Optional(Type.Union([Type.String({ maxLength: 256 }), Type.Null()])),
            display_name: Type.Optional(Type.Union([Type.String({ maxLength: 256 }), Type.Null()])),
            metadata: Type.Optional(MetadataInput),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ success: Type.Literal(true) }), ...GRAPH_ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const body = request.body;
      if (Object.keys(body).length === 0) {
        throw new ApiError(
          "missing_required_field",
          "Give at least one of profile_name, display_name, metadata.",
        );
      }
      const scope = scopeOf(request);
      return runWrite(request, reply, async (tx) => {
        const txScope = scopeOf(request, tx);
        const account = await requireAccountByPhoneNumberId(
          tx,
          scope.organizationId,
          request.params.phone_number_id,
        );
        const found = await findContactByIdentifier(
          txScope,
          contactIdOf(request.params.wa_id),
          account,
          "wa_id",
        );
        await updateContact(txScope, found.id, {
          profile_name: body.profile_name,
          display_name: body.display_name,
          ...metadataChange(body.metadata),
        });
        return { status: 200, body: { success: true as const } };
      });
    },
  );
};
