import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { rateLimitsOf } from "../../domain/organizations.ts";
import { ApiError } from "../../errors.ts";
import { listAccounts } from "../../store/repositories/accounts.ts";
import { principalOf, protect } from "../auth.ts";
import { AccountSchema, accountOut } from "../representation.ts";
import {
  DataEnvelope,
  ErrorBody,
  NATIVE_ERROR_RESPONSES,
  NullableString,
  Timestamp,
  WithRequestId,
} from "../schemas.ts";
import { contactBatchRoutes } from "./contact-batch.ts";
import { contactRoutes } from "./contacts.ts";
import { exportRoutes } from "./export.ts";
import { identityHistoryRoutes } from "./identity-history.ts";
import { importRoutes } from "./imports.ts";
import { labelRoutes } from "./labels.ts";
import { mergeRoutes } from "./merges.ts";
import { webhookRoutes } from "./webhooks.ts";

/** The native `/v1` surface (kirim.chat style). */
export const nativeRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { store } = app.services;

  app.get(
    "/health",
    {
      schema: {
        tags: ["system"],
        summary: "Liveness",
        security: [],
        response: { 200: WithRequestId(Type.Object({ status: Type.Literal("ok") })) },
      },
    },
    async () => ({ status: "ok" as const }),
  );

  app.get(
    "/ready",
    {
      schema: {
        tags: ["system"],
        summary: "Readiness: the store answers",
        security: [],
        response: {
          200: WithRequestId(Type.Object({ status: Type.Literal("ready") })),
          503: ErrorBody,
        },
      },
    },
    async () => {
      try {
        await store.ping();
      } catch (error) {
        throw new ApiError("service_unavailable", "The store is not reachable.", { cause: error });
      }
      return { status: "ready" as const };
    },
  );

  app.get(
    "/openapi.json",
    { schema: { tags: ["system"], summary: "OpenAPI 3.1 document of the native surface", security: [] } },
    async () => nativeOpenApi(app.swagger() as OpenApiDocument),
  );

  // Everything below needs an API key.
  const protectedRoutes: FastifyPluginAsyncTypebox = async (protectedApp) => {
    protect(protectedApp);

    protectedApp.get(
      "/me",
      {
        schema: {
          tags: ["account"],
          summary: "The organisation and API key making the request",
          response: {
            200: DataEnvelope(
              Type.Object({
                object: Type.Literal("me"),
                organization: Type.Object({
                  id: Type.String(),
                  object: Type.Literal("organization"),
                  name: Type.String(),
                  created_at: Timestamp,
                }),
                api_key: Type.Object({
                  id: Type.String(),
                  label: NullableString(),
                  last4: Type.String(),
                  expires_at: Type.Union([Timestamp, Type.Null()]),
                }),
                rate_limits: Type.Object({
                  read_per_minute: Type.Integer(),
                  write_per_minute: Type.Integer(),
                }),
              }),
            ),
            ...NATIVE_ERROR_RESPONSES,
          },
        },
      },
      async (request) => {
        const { organization, apiKey } = principalOf(request);
        return {
          data: {
            object: "me" as const,
            organization: {
              id: organization.id,
              object: "organization" as const,
              name: organization.name,
              created_at: new Date(organization.created_at).toISOString(),
            },
            api_key: {
              id: apiKey.id,
              label: apiKey.label,
              last4: apiKey.last4,
              expires_at: apiKey.expires_at === null ? null : new Date(apiKey.expires_at).toISOString(),
            },
            rate_limits: rateLimitsOf(organization),
          },
        };
      },
    );

    protectedApp.get(
      "/accounts",
      {
        schema: {
          tags: ["account"],
          summary: "The organisation's connected WhatsApp numbers",
          querystring: Type.Object(
            {
              status: Type.Optional(
                Type.Union([Type.Literal("connected"), Type.Literal("all")], { default: "connected" }),
              ),
            },
            { additionalProperties: false },
          ),
          response: {
            200: WithRequestId(
              Type.Object({
                data: Type.Array(AccountSchema),
                has_more: Type.Boolean(),
                next_cursor: Type.Null(),
              }),
            ),
            ...NATIVE_ERROR_RESPONSES,
          },
        },
      },
      async (request) => {
        const { organization } = principalOf(request);
        const status = request.query.status === "all" ? undefined : "connected";
        const rows = await listAccounts(store.db, organization.id, status);
        return { data: rows.map(accountOut), has_more: false, next_cursor: null };
      },
    );
    await protectedApp.register(contactRoutes);
    await protectedApp.register(contactBatchRoutes);
    await protectedApp.register(labelRoutes);
    await protectedApp.register(importRoutes);
    await protectedApp.register(exportRoutes);
    await protectedApp.register(webhookRoutes);
    await protectedApp.register(identityHistoryRoutes);
    await protectedApp.register(mergeRoutes);
  };
  await app.register(protectedRoutes);
};

interface OpenApiDocument {
  paths?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The generated document restricted to the native surface's paths. */
function nativeOpenApi(document: OpenApiDocument): OpenApiDocument {
  const paths = Object.fromEntries(
    Object.entries(document.paths ?? {}).filter(([path]) => path.startsWith("/v1/")),
  );
  return { ...document, paths };
}
