import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyRequest } from "fastify";
import { Type } from "typebox";
import { createAccount, deleteAccount, updateAccount } from "../../domain/accounts.ts";
import { constantTimeEqual } from "../../domain/auth.ts";
import { toIso, toIsoOrNull } from "../../domain/clock.ts";
import {
  createApiKey,
  createOrganization,
  deleteOrganization,
  listApiKeysOf,
  rateLimitsOf,
  revokeApiKey,
  updateOrganization,
} from "../../domain/organizations.ts";
import { canonicalScope, DEFAULT_LIMIT, pageOf } from "../../domain/pagination.ts";
import { ApiError } from "../../errors.ts";
import { listOrganizations } from "../../store/repositories/organizations.ts";
import { AccountSchema, accountOut, OrganizationSchema, organizationOut } from "../representation.ts";
import {
  DataEnvelope,
  Id,
  instantOf,
  ListEnvelope,
  NATIVE_ERROR_RESPONSES,
  NO_CONTROL_CHARACTERS,
  NullableString,
  PageQuery,
  PhoneNumberId,
  Timestamp,
} from "../schemas.ts";

const Status = Type.Union([
  Type.Literal("connected"),
  Type.Literal("disconnected"),
  Type.Literal("onboarding"),
]);
const Name = Type.String({ minLength: 1, maxLength: 256, pattern: NO_CONTROL_CHARACTERS });
/** Checked in words by the domain (requireCountry): any case, upper-cased when stored. */
const DefaultCountry = NullableString({
  minLength: 1,
  maxLength: 8,
  description:
    "ISO 3166-1 alpha-2 code (ID, GB, US): local-format numbers (0812…) of the account's contacts are read in this " +
    "country (docs/contacts.md); null: only international numbers",
});
const RateLimit = Type.Integer({ minimum: 1, maximum: 1_000_000 });

const ApiKeySchema = Type.Object({
  object: Type.Literal("api_key"),
  id: Type.String(),
  organization_id: Type.String(),
  key: Type.Optional(Type.String({ description: "Shown only in the response that creates the key" })),
  last4: Type.String(),
  label: NullableString(),
  expires_at: Type.Union([Timestamp, Type.Null()]),
  revoked_at: Type.Union([Timestamp, Type.Null()]),
  created_at: Timestamp,
});

const ErasedSchema = Type.Object(
  {
    accounts: Type.Integer(),
    contacts: Type.Integer(),
    labels: Type.Integer(),
    customers: Type.Integer(),
    api_keys: Type.Integer(),
    imports: Type.Integer(),
    idempotency_keys: Type.Integer(),
  },
  { description: "How many rows of each kind were erased" },
);

/**
 * The operator API (`/admin/v1`), enabled by PHONEBOOK_ADMIN_TOKEN. Without
 * the token its routes are not registered at all, so they answer 404.
 */
export const adminRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config, store, authenticator } = app.services;
  const token = config.adminToken;
  if (!token) return;

  app.addHook("onRequest", async (request: FastifyRequest) => {
    const header = request.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!header)
      throw new ApiError("missing_api_key", "Send Authorization: Bearer <admin token>.", {
        param: "Authorization",
      });
    if (!match?.[1] || !constantTimeEqual(match[1], token)) {
      throw new ApiError("invalid_api_key", "The admin token is not valid.", { param: "Authorization" });
    }
  });

  const tags = ["admin"];

  app.post(
    "/organizations",
    {
      schema: {
        tags,
        summary: "Create an organisation",
        body: Type.Object({ name: Name }, { additionalProperties: false }),
        response: { 201: DataEnvelope(OrganizationSchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const org = await createOrganization(store.db, request.body);
      reply.status(201);
      return { data: organizationOut(org, rateLimitsOf(org)) };
    },
  );

  app.get(
    "/organizations",
    {
      schema: {
        tags,
        summary: "List organisations",
        querystring: Type.Object({ ...PageQuery }, { additionalProperties: false }),
        response: { 200: ListEnvelope(OrganizationSchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? DEFAULT_LIMIT;
      const scope = canonicalScope("admin.organizations", null, {});
      const after = request.query.cursor
        ? app.services.cursors.decode(scope, request.query.cursor)
        : undefined;
      const rows = await listOrganizations(store.db, { limit: limit + 1, after });
      const page = pageOf(rows, limit, app.services.cursors, scope, (org) =>
        organizationOut(org, rateLimitsOf(org)),
      );
      return page;
    },
  );

  app.patch(
    "/organizations/:org_id",
    {
      schema: {
        tags,
        summary: "Rename an organisation or set its rate limits",
        params: Type.Object({ org_id: Id("org") }),
        body: Type.Object(
          {
            name: Type.Optional(Name),
            rate_limits: Type.Optional(
              Type.Union([
                Type.Object(
                  { read_per_minute: Type.Optional(RateLimit), write_per_minute: Type.Optional(RateLimit) },
                  { additionalProperties: false },
                ),
                Type.Null(),
              ]),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: DataEnvelope(OrganizationSchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request) => {
      const org = await updateOrganization(store.db, request.params.org_id, request.body);
      authenticator.forgetOrganization(org.id);
      return { data: organizationOut(org, rateLimitsOf(org)) };
    },
  );

  app.post(
    "/organizations/:org_id/api_keys",
    {
      schema: {
        tags,
        summary: "Create an API key (the key is shown once)",
        params: Type.Object({ org_id: Id("org") }),
        body: Type.Optional(
          Type.Object(
            {
              label: Type.Optional(
                NullableString({ minLength: 1, maxLength: 100, pattern: NO_CONTROL_CHARACTERS }),
              ),
              expires_at: Type.Optional(Type.Union([Timestamp, Type.Null()])),
            },
            { additionalProperties: false },
          ),
        ),
        response: { 201: DataEnvelope(ApiKeySchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const body = request.body ?? {};
      const expiresAt = body.expires_at ? instantOf(body.expires_at) : null;
      const created = await createApiKey(store.db, request.params.org_id, {
        label: body.label,
        expires_at: expiresAt,
      });
      reply.status(201);
      return { data: { ...apiKeyOut(created.row), key: created.key } };
    },
  );

  app.delete(
    "/api_keys/:key_id",
    {
      schema: {
        tags,
        summary: "Revoke an API key",
        params: Type.Object({ key_id: Id("key") }),
        response: { 200: DataEnvelope(ApiKeySchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request) => {
      const row = await revokeApiKey(store.db, request.params.key_id);
      authenticator.forgetOrganization(row.organization_id);
      return { data: apiKeyOut(row) };
    },
  );

  app.delete(
    "/organizations/:org_id",
    {
      schema: {
        tags,
        summary: "Delete an organisation and erase all its data",
        description:
          "Erases, in one transaction: its API keys (they stop working at once), accounts, contacts " +
          "(with labels attached to them), labels, customers, imports (with the uploaded files) and " +
          "idempotency records. Cannot be undone.",
        params: Type.Object({ org_id: Id("org") }),
        response: {
          200: DataEnvelope(
            Type.Object({
              id: Type.String(),
              object: Type.Literal("organization"),
              deleted: Type.Literal(true),
              erased: ErasedSchema,
            }),
          ),
          ...NATIVE_ERROR_RESPONSES,
        },
      },
    },
    async (request) => {
      const id = request.params.org_id;
      const erased = await store.transaction((tx) => deleteOrganization(tx, id));
      authenticator.forgetOrganization(id);
      return {
        data: { id, object: "organization" as const, deleted: true as const, erased },
      };
    },
  );

  app.get(
    "/organizations/:org_id/api_keys",
    {
      schema: {
        tags,
        summary: "List an organisation's API keys (never the keys themselves)",
        params: Type.Object({ org_id: Id("org") }),
        querystring: Type.Object({ ...PageQuery }, { additionalProperties: false }),
        response: { 200: ListEnvelope(ApiKeySchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? DEFAULT_LIMIT;
      const orgId = request.params.org_id;
      const scope = canonicalScope("admin.api_keys", null, { org_id: orgId });
      const after = request.query.cursor
        ? app.services.cursors.decode(scope, request.query.cursor)
        : undefined;
      const rows = await listApiKeysOf(store.db, orgId, { limit: limit + 1, after });
      const page = pageOf(rows, limit, app.services.cursors, scope, apiKeyOut);
      return page;
    },
  );

  app.post(
    "/organizations/:org_id/accounts",
    {
      schema: {
        tags,
        summary: "Connect a WhatsApp number to an organisation",
        params: Type.Object({ org_id: Id("org") }),
        body: Type.Object(
          {
            phone_number_id: PhoneNumberId("Meta phone_number_id of the number"),
            phone_number: Type.String({
              minLength: 1,
              maxLength: 40,
              "x-error-code": "invalid_phone_number",
            }),
            name: Type.Optional(
              NullableString({ minLength: 1, maxLength: 256, pattern: NO_CONTROL_CHARACTERS }),
            ),
            status: Type.Optional(Status),
            default_country: Type.Optional(DefaultCountry),
          },
          { additionalProperties: false },
        ),
        response: { 201: DataEnvelope(AccountSchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const account = await createAccount(store.db, request.params.org_id, request.body);
      reply.status(201);
      return { data: accountOut(account) };
    },
  );

  app.delete(
    "/accounts/:account_id",
    {
      schema: {
        tags,
        summary: "Remove an account and erase its contacts",
        description:
          "Erases, in one transaction: the account, its contacts (with their label attachments), its " +
          "imports and its webhook receipts. Labels and customers, which belong to the organisation, stay.",
        params: Type.Object({ account_id: Id("wba") }),
        response: {
          200: DataEnvelope(
            Type.Object({
              id: Type.String(),
              object: Type.Literal("account"),
              phone_number_id: Type.String(),
              deleted: Type.Literal(true),
              erased: ErasedSchema,
            }),
          ),
          ...NATIVE_ERROR_RESPONSES,
        },
      },
    },
    async (request) => {
      const { account, erased } = await store.transaction((tx) =>
        deleteAccount(tx, request.params.account_id),
      );
      return {
        data: {
          id: account.id,
          object: "account" as const,
          phone_number_id: account.phone_number_id,
          deleted: true as const,
          erased,
        },
      };
    },
  );

  app.patch(
    "/accounts/:account_id",
    {
      schema: {
        tags,
        summary: "Rename an account, change its status or its default country",
        params: Type.Object({ account_id: Id("wba") }),
        body: Type.Object(
          {
            name: Type.Optional(
              NullableString({ minLength: 1, maxLength: 256, pattern: NO_CONTROL_CHARACTERS }),
            ),
            status: Type.Optional(Status),
            default_country: Type.Optional(DefaultCountry),
          },
          { additionalProperties: false },
        ),
        response: { 200: DataEnvelope(AccountSchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request) => {
      const account = await updateAccount(store.db, request.params.account_id, request.body);
      return { data: accountOut(account) };
    },
  );
};

function apiKeyOut(row: {
  id: string;
  organization_id: string;
  last4: string;
  label: string | null;
  expires_at: number | null;
  revoked_at: number | null;
  created_at: number;
}) {
  return {
    object: "api_key" as const,
    id: row.id,
    organization_id: row.organization_id,
    last4: row.last4,
    label: row.label,
    expires_at: toIsoOrNull(row.expires_at),
    revoked_at: toIsoOrNull(row.revoked_at),
    created_at: toIso(row.created_at),
  };
}
