import { Readable } from "node:stream";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyRequest } from "fastify";
import { Type } from "typebox";
import { requireAccountByPhoneNumberId } from "../../domain/accounts.ts";
import { contactFilters, type Scope } from "../../domain/contacts.ts";
import { EXPORT_BATCH, type ExportFormat, exportContacts } from "../../jobs/export.ts";
import { principalOf } from "../auth.ts";
import { NATIVE_ERROR_RESPONSES } from "../schemas.ts";
import { ListQuery } from "./contacts.ts";
import { type NativeListQuery, nativeFilters } from "./wire.ts";

const { limit: _limit, cursor: _cursor, ...filterProperties } = ListQuery.properties;

/** `GET …/contacts/export` in both path styles. */
export const exportRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { store } = app.services;
  for (const scoped of [false, true]) {
    const path = scoped ? "/:phone_number_id/contacts/export" : "/contacts/export";
    app.get(
      path,
      {
        schema: {
          tags: ["contacts"],
          summary: `Export every matching contact as CSV or NDJSON${scoped ? " (one account)" : ""}`,
          description:
            "Streamed in constant memory, newest first; takes the list filters. CSV columns and the round trip with imports: docs/imports-and-export.md. " +
            "CSV cells starting with = + - @, a tab or a carriage return are prefixed with ' so that spreadsheets do not run them as formulas (OWASP CSV injection); the import removes that quote again. raw=true exports the values as stored (for machine consumers); NDJSON is always exact.",
          params: Type.Object(scoped ? { phone_number_id: Type.String({ pattern: "^\\d{6,20}$" }) } : {}),
          querystring: Type.Object(
            {
              ...filterProperties,
              format: Type.Optional(
                Type.Union([Type.Literal("csv"), Type.Literal("ndjson")], { default: "csv" }),
              ),
              raw: Type.Optional(
                Type.Union([Type.Literal("true"), Type.Literal("false")], {
                  description: "CSV: true exports formula-like cells unneutralised (no leading ')",
                }),
              ),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.String({ description: "text/csv or application/x-ndjson" }),
            ...NATIVE_ERROR_RESPONSES,
          },
        },
      },
      async (request: FastifyRequest, reply) => {
        const scope: Scope = {
          db: store.db,
          dialect: store.dialect,
          organizationId: principalOf(request).organization.id,
        };
        const {
          format = "csv",
          raw,
          ...query
        } = request.query as NativeListQuery & { format?: ExportFormat; raw?: "true" | "false" };
        const pnid = (request.params as { phone_number_id?: string }).phone_number_id;
        const account =
          pnid === undefined
            ? undefined
            : await requireAccountByPhoneNumberId(scope.db, scope.organizationId, pnid);
        const filters = contactFilters(scope.organizationId, account?.id, nativeFilters(query));
        const stream = Readable.from(
          exportContacts(scope, filters, format, EXPORT_BATCH, { raw: raw === "true" }),
          { objectMode: false },
        );
        stream.on("error", (error) => request.log.error({ err: error }, "export failed while streaming"));
        const date = new Date().toISOString().slice(0, 10);
        reply
          .type(format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson; charset=utf-8")
          .header(
            "content-disposition",
            `attachment; filename="contacts-${date}.${format === "csv" ? "csv" : "ndjson"}"`,
          )
          .header("cache-control", "no-store");
        return reply.send(stream);
      },
    );
  }
};
