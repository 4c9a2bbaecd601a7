import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { toIso } from "../../domain/clock.ts";
import { getContact } from "../../domain/contacts.ts";
import { canonicalScope, DEFAULT_LIMIT, pageOf } from "../../domain/pagination.ts";
import { type IdentityChangeRow, listIdentityChanges } from "../../store/repositories/identity-history.ts";
import { scopeOf } from "../auth.ts";
import {
  Id,
  ListEnvelope,
  NATIVE_ERROR_RESPONSES,
  NullableString,
  PageQuery,
  Timestamp,
} from "../schemas.ts";
import { PATH_STYLES, pathAccountOf } from "./scope.ts";

export const IdentityChangeSchema = Type.Object(
  {
    object: Type.Literal("identity_change"),
    id: Type.String(),
    kind: Type.Union([Type.Literal("user_changed_number"), Type.Literal("user_changed_user_id")], {
      description: "The Meta system message that reported the change",
    }),
    previous_phone_number: NullableString(),
    phone_number: NullableString(),
    previous_business_scoped_user_id: NullableString(),
    business_scoped_user_id: NullableString(),
    changed_at: Timestamp,
  },
  { $id: "IdentityChange" },
);

function identityChangeOut(row: IdentityChangeRow) {
  return {
    object: "identity_change" as const,
    id: row.id,
    kind: row.kind,
    previous_phone_number: row.previous_phone_number,
    phone_number: row.phone_number,
    previous_business_scoped_user_id: row.previous_business_scoped_user_id,
    business_scoped_user_id: row.business_scoped_user_id,
    changed_at: toIso(row.created_at),
  };
}

/**
 * `GET /v1/contacts/{id}/identity_history` (and the account-scoped path): the
 * phone number and BSUID changes Meta reported for a contact, newest first.
 */
export const identityHistoryRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { cursors } = app.services;
  for (const style of PATH_STYLES) {
    app.get(
      `${style.base}/:id/identity_history`,
      {
        schema: {
          tags: ["contacts"],
          summary: `A contact's identity history (phone number and BSUID changes from Meta)${style.suffix}`,
          params: style.params({ id: Id("ctc") }),
          querystring: Type.Object({ ...PageQuery }, { additionalProperties: false }),
          response: { 200: ListEnvelope(IdentityChangeSchema), ...NATIVE_ERROR_RESPONSES },
        },
      },
      async (request) => {
        const scope = scopeOf(request);
        const account = await pathAccountOf(scope, request.params.phone_number_id);
        const contact = await getContact(scope, request.params.id, account?.id);
        const limit = request.query.limit ?? DEFAULT_LIMIT;
        const cursorScope = canonicalScope("native.identity_history", scope.organizationId, {
          contact: contact.id,
        });
        const { cursor } = request.query;
        const after = cursor === undefined ? undefined : cursors.decode(cursorScope, cursor);
        const rows = await listIdentityChanges(scope.db, contact.id, after, limit + 1);
        return pageOf(rows, limit, cursors, cursorScope, identityChangeOut);
      },
    );
  }
};
