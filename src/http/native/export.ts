import { Readable } from "node:stream";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { resolveContactFilters } from "../../domain/contacts.ts";
import { EXPORT_BATCH, exportContacts } from "../../jobs/export.ts";
import { scopeOf } from "../auth.ts";
import { NATIVE_ERROR_RESPONSES, QueryBoolean } from "../schemas.ts";
import { ListQuery } from "./contacts.ts";
import { contactOut } from "./representation.ts";
import { PATH_STYLES, pathAccountOf } from "./scope.ts";
import { resolveNativeFilters } from "./wire.ts";

const { limit: _limit, cursor: _cursor, ...filterProperties } = ListQuery.properties;

/** `GET …/contacts/export` in both path styles. */
export const exportRoutes: FastifyPluginAsyncTypebox = async (app) => {
  for (const style of PATH_STYLES) {
    const path = `${style.base}/export`;
    app.get(
      path,
      {
        schema: {
          tags: ["contacts"],
          summary: `Export every matching contact as CSV or NDJSON${style.suffix}`,
          description:
            "Streamed in constant memory, newest first; takes the list filters. CSV columns and the round trip with imports: docs/imports-and-export.md. " +
            "CSV cells starting with = + - @, a tab or a carriage return are prefixed with ' so that spreadsheets do not run them as formulas (OWASP CSV injection); the import removes that quote again. raw=true exports the values as stored (for machine consumers); NDJSON is always exact.",
          params: style.params(),
          querystring: Type.Object(
            {
              ...filterProperties,
              format: Type.Optional(
                Type.Union([Type.Literal("csv"), Type.Literal("ndjson")], { default: "csv" }),
              ),
              raw: Type.Optional(
                QueryBoolean("CSV: true exports formula-like cells unneutralised (no leading ')"),
              ),
            },
            { additionalProperties: false },
          ),
          response: {
            // A stream of text (the serializer leaves streams alone); OpenAPI shows a string.
            200: Type.Unsafe<Readable>({ type: "string", description: "text/csv or application/x-ndjson" }),
            ...NATIVE_ERROR_RESPONSES,
          },
        },
      },
      async (request, reply) => {
        const scope = scopeOf(request);
        const { format = "csv", raw, ...query } = request.query;
        const account = await pathAccountOf(scope, request.params.phone_number_id);
        const filters = await resolveContactFilters(scope, account, await resolveNativeFilters(scope, query));
        const stream = Readable.from(
          exportContacts(scope, filters, format, EXPORT_BATCH, { raw: raw === true, record: contactOut }),
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
