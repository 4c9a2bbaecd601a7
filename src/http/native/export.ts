import { Readable } from "node:stream";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyRequest } from "fastify";
import { Type } from "typebox";
import { requireAccountByPhoneNumberId } from "../../domain/accounts.ts";
import { toIso } from "../../domain/clock.ts";
import {
  type ContactView,
  contactFilters,
  type ListQuery as ListFilters,
  listContacts,
  type Scope,
} from "../../domain/contacts.ts";
import { neutralizeCell } from "../../domain/csv-cells.ts";
import { waIdOf } from "../../domain/phone.ts";
import type { ContactFilters, Keyset } from "../../store/repositories/contacts.ts";
import { principalOf } from "../auth.ts";
import { NATIVE_ERROR_RESPONSES } from "../schemas.ts";
import { contactOut } from "./contact-representation.ts";
import { ListQuery } from "./contacts.ts";

export type ExportFormat = "csv" | "ndjson";

/** Contacts read per query while exporting: memory holds one batch, whatever the total. */
export const EXPORT_BATCH = 500;
/** Contacts per piece of text handed to the response (see exportContacts). */
const EXPORT_PIECE = 50;

/**
 * CSV columns of the export. `name` is the name set on the contact (its
 * display name; the WhatsApp profile name has its own column), so editing it
 * and importing the file renames. Import reads `phone_number`, `name`,
 * `email`, `labels`, `metadata` and `business_scoped_user_id`, and ignores the
 * read-only rest, so that an export imports back unchanged
 * (docs/imports-and-export.md).
 */
export const CSV_COLUMNS = [
  "id",
  "phone_number",
  "name",
  "profile_name",
  "email",
  "labels",
  "metadata",
  "business_scoped_user_id",
  "parent_business_scoped_user_id",
  "username",
  "wa_id",
  "phone_number_id",
  "source",
  "marketing_opt_out",
  "created_at",
  "updated_at",
] as const;

/**
 * RFC 4180: a field with a comma, quote or line break is quoted, quotes
 * doubled; unless `raw`, formula cells are neutralised first.
 */
export function csvField(value: string | null, raw = false): string {
  if (value === null) return "";
  const text = raw ? value : neutralizeCell(value);
  return /[",\r\n]/.test(text) || /^\s|\s$/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function csvRow(view: ContactView, raw: boolean): string {
  const labels = view.labels.map((l) => (l.name.includes("|") ? l.id : l.name)).join("|");
  const values: Record<(typeof CSV_COLUMNS)[number], string | null> = {
    id: view.id,
    phone_number: view.phone_number,
    name: view.display_name,
    profile_name: view.profile_name,
    email: view.email,
    labels,
    metadata: view.metadata,
    business_scoped_user_id: view.business_scoped_user_id,
    parent_business_scoped_user_id: view.parent_business_scoped_user_id,
    username: view.username,
    wa_id: waIdOf(view.phone_number),
    phone_number_id: view.account_phone_number_id,
    source: view.source,
    marketing_opt_out: view.marketing_opt_out === 1 ? "true" : "false",
    created_at: toIso(view.created_at),
    updated_at: toIso(view.updated_at),
  };
  return `${CSV_COLUMNS.map((c) => csvField(values[c], raw)).join(",")}\r\n`;
}

/**
 * Every contact matching the filters, newest first, as text: one query per
 * EXPORT_BATCH contacts (keyset, so the thousandth batch costs what the first
 * costs), one string per batch. Pulled by the consumer, so a slow reader
 * slows the queries instead of filling memory. CSV cells a spreadsheet would
 * run as formulas are neutralised unless `raw` (NDJSON is always exact).
 */
export async function* exportContacts(
  scope: Scope,
  filters: ContactFilters,
  format: ExportFormat,
  batchSize = EXPORT_BATCH,
  options: { raw?: boolean } = {},
): AsyncGenerator<string> {
  const raw = options.raw === true;
  if (format === "csv") yield `${CSV_COLUMNS.join(",")}\r\n`;
  let after: Keyset | undefined;
  for (;;) {
    const rows = await listContacts(scope, filters, after, batchSize);
    if (rows.length === 0) return;
    // Yielded in pieces of EXPORT_PIECE rows: a whole batch as one string
    // (~300 KB) is a "large object" that V8 allocates straight in the old
    // generation, so every batch left garbage only a full collection frees
    // (the heap grew by ~90 MB of it over a 1M-row export).
    let piece = "";
    for (const [i, row] of rows.entries()) {
      piece += format === "csv" ? csvRow(row, raw) : `${JSON.stringify(contactOut(row))}\n`;
      if ((i + 1) % EXPORT_PIECE === 0 || i === rows.length - 1) {
        yield piece;
        piece = "";
      }
    }
    if (rows.length < batchSize) return;
    const last = rows[rows.length - 1]!;
    after = { created_at: last.created_at, id: last.id };
    // better-sqlite3 answers synchronously and a fast reader drains the socket
    // at once, so without this turn the whole export runs without returning to
    // the event loop: the server answered nothing else until it ended.
    await nextTurn();
  }
}

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
        } = request.query as ListFilters & { format?: ExportFormat; raw?: "true" | "false" };
        const pnid = (request.params as { phone_number_id?: string }).phone_number_id;
        const account =
          pnid === undefined
            ? undefined
            : await requireAccountByPhoneNumberId(scope.db, scope.organizationId, pnid);
        const filters = contactFilters(scope.organizationId, account?.id, query);
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
