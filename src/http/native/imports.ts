import { Readable } from "node:stream";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { requireAccountByPhoneNumberId } from "../../domain/accounts.ts";
import { toIso, toIsoOrNull } from "../../domain/clock.ts";
import { resolveAccount } from "../../domain/contacts.ts";
import {
  createImport,
  getImport,
  IMPORT_MAX_BYTES,
  type ImportErrorRow,
  type ImportRow,
  listImports,
  tooLarge,
} from "../../domain/imports.ts";
import { canonicalScope, DEFAULT_LIMIT, pageOf } from "../../domain/pagination.ts";
import { ApiError } from "../../errors.ts";
import { newId } from "../../ids.ts";
import { type ImportFormat, receiveUpload } from "../../jobs/import-records.ts";
import { findAccount, listAccounts } from "../../store/repositories/accounts.ts";
import { principalOf, scopeOf } from "../auth.ts";
import {
  DataEnvelope,
  Id,
  ListEnvelope,
  NATIVE_ERROR_RESPONSES,
  PageQuery,
  PhoneNumberId,
  Timestamp,
} from "../schemas.ts";
import { runWrite } from "../write-transaction.ts";

const CONTENT_TYPES: Record<string, ImportFormat> = {
  "text/csv": "csv",
  "application/csv": "csv",
  "application/x-ndjson": "ndjson",
  "application/ndjson": "ndjson",
  "application/jsonl": "ndjson",
};

function formatOf(contentType: string | undefined): ImportFormat | undefined {
  const type = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  return CONTENT_TYPES[type];
}

/** The 415 of an import sent with the wrong Content-Type, naming the right ones. */
function wrongMediaType(contentType: string | undefined): ApiError {
  const sent = (contentType ?? "").split(";")[0]!.trim();
  return new ApiError(
    "unsupported_media_type",
    `${sent ? `Content-Type ${sent} is not an import file type. ` : ""}Send the file as the raw body with Content-Type text/csv (CSV) or application/x-ndjson (NDJSON), e.g. curl --data-binary @contacts.csv -H "Content-Type: text/csv". See docs/imports-and-export.md.`,
    { param: "Content-Type" },
  );
}

/** Encodings an import file may be sent in; every other is converted to UTF-8 as it arrives. */
const ENCODINGS: Record<string, "utf-8" | "windows-1252"> = {
  "utf-8": "utf-8",
  utf8: "utf-8",
  // WHATWG (and every browser) reads ISO-8859-1 as its superset Windows-1252.
  latin1: "windows-1252",
  "iso-8859-1": "windows-1252",
  "windows-1252": "windows-1252",
  cp1252: "windows-1252",
};

/** `encoding=` wins over the Content-Type's charset; UTF-8 when neither is given. */
function encodingOf(param: string | undefined, contentType: string | undefined): "utf-8" | "windows-1252" {
  const charset = /;\s*charset="?([^";\s]+)"?/i.exec(contentType ?? "")?.[1];
  const name = (param ?? charset ?? "utf-8").toLowerCase();
  const encoding = ENCODINGS[name];
  if (!encoding) {
    throw new ApiError(
      "invalid_field_value",
      `encoding must be one of utf-8, latin1 (also iso-8859-1, windows-1252); got "${name}".`,
      { param: param === undefined ? "Content-Type" : "encoding" },
    );
  }
  return encoding;
}

/** A Latin-1 (Windows-1252) byte stream as UTF-8, piece by piece. */
async function* toUtf8(source: AsyncIterable<Uint8Array>, encoding: "windows-1252"): AsyncGenerator<Buffer> {
  const decoder = new TextDecoder(encoding);
  for await (const chunk of source) yield Buffer.from(decoder.decode(chunk, { stream: true }), "utf8");
  const rest = decoder.decode();
  if (rest !== "") yield Buffer.from(rest, "utf8");
}

const ImportErrorSchema = Type.Object({
  row: Type.Integer({ description: "1-based data row (the CSV header and blank lines are not rows)" }),
  line: Type.Integer({ description: "Line of the file where the row starts" }),
  code: Type.String(),
  message: Type.String(),
  param: Type.Optional(Type.String()),
});

export const ImportSchema = Type.Object(
  {
    object: Type.Literal("import"),
    id: Type.String(),
    status: Type.Union([
      Type.Literal("queued"),
      Type.Literal("running"),
      Type.Literal("completed"),
      Type.Literal("failed"),
    ]),
    format: Type.String(),
    mode: Type.String(),
    phone_number_id: Type.Union([Type.String(), Type.Null()]),
    size_bytes: Type.Integer(),
    total_rows: Type.Integer(),
    processed_rows: Type.Integer(),
    created: Type.Integer(),
    updated: Type.Integer(),
    unchanged: Type.Integer(),
    failed_rows: Type.Integer(),
    errors: Type.Array(ImportErrorSchema, { description: "The first 1,000 row errors, in row order" }),
    failure: Type.Union([Type.String(), Type.Null()], { description: "Why a failed import stopped" }),
    created_at: Timestamp,
    started_at: Type.Union([Timestamp, Type.Null()]),
    completed_at: Type.Union([Timestamp, Type.Null()]),
  },
  { $id: "Import" },
);

export function importOut(row: ImportRow, errors: ImportErrorRow[], phoneNumberId: string | null) {
  return {
    object: "import" as const,
    id: row.id,
    status: row.status,
    format: row.format,
    mode: row.mode,
    phone_number_id: phoneNumberId,
    size_bytes: row.size_bytes,
    total_rows: row.total_rows,
    processed_rows: row.processed_rows,
    created: row.created,
    updated: row.updated,
    unchanged: row.unchanged,
    failed_rows: row.failed_rows,
    errors: errors.map((e) => ({
      row: e.row_no,
      line: e.line,
      code: e.code,
      message: e.message,
      ...(e.param === null ? {} : { param: e.param }),
    })),
    failure: row.failure,
    created_at: toIso(row.created_at),
    started_at: toIsoOrNull(row.started_at),
    completed_at: toIsoOrNull(row.completed_at),
  };
}

/**
 * `/v1/imports`: file imports. The CSV and NDJSON body parsers exist only in
 * this plugin's context, with the import size limit; they hand the handler the
 * raw stream, which is stored piece by piece as it arrives.
 */
export const importRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { store, cursors } = app.services;
  const tags = ["imports"];
  app.addContentTypeParser(
    Object.keys(CONTENT_TYPES),
    { bodyLimit: IMPORT_MAX_BYTES },
    (_request, payload, done) => done(null, payload),
  );
  const phoneNumberIdOf = async (row: ImportRow) =>
    (await findAccount(store.db, row.account_id))?.phone_number_id ?? null;

  app.post(
    "/imports",
    {
      // No total time limit on the file, only on pauses between its bytes (docs/security.md).
      config: { longUpload: true },
      schema: {
        tags,
        summary: "Start a file import (CSV or NDJSON body, up to 100 MiB)",
        description:
          "The raw file is the body: Content-Type text/csv or application/x-ndjson. Rows are processed in batches in the background; poll GET /v1/imports/{id}. See docs/imports-and-export.md for columns.",
        querystring: Type.Object(
          {
            phone_number_id: Type.Optional(PhoneNumberId("The account; optional when you have one")),
            mode: Type.Optional(
              Type.Union([Type.Literal("create"), Type.Literal("upsert")], { default: "create" }),
            ),
            encoding: Type.Optional(
              Type.String({
                maxLength: 20,
                description:
                  "The file's text encoding: utf-8 (default) or latin1 (iso-8859-1, windows-1252), converted to UTF-8 as it arrives. " +
                  "A row of a UTF-8 import that is not UTF-8 is a row error invalid_encoding, never stored with replacement characters. " +
                  "The Content-Type's charset is read when this is absent.",
              }),
            ),
          },
          { additionalProperties: false },
        ),
        // Documents the raw file body in OpenAPI; the schemas accept anything (the handler reads the stream).
        body: {
          content: Object.fromEntries(
            Object.entries(CONTENT_TYPES).map(([type, format]) => [
              type,
              {
                schema: {
                  description: format === "csv" ? "A CSV file with a header row" : "One JSON object per line",
                },
              },
            ]),
          ),
        },
        response: { 202: DataEnvelope(ImportSchema), ...NATIVE_ERROR_RESPONSES },
      },
      // Before Fastify looks for a body parser: a body of another type (curl's
      // default form encoding, text/plain, octet-stream) gets the import's hint,
      // not the JSON routes' "send application/json".
      preParsing: async (request) => {
        const type = request.headers["content-type"];
        if (type !== undefined && !formatOf(type)) throw wrongMediaType(type);
      },
    },
    async (request, reply) => {
      try {
        const format = formatOf(request.headers["content-type"]);
        if (!format) throw wrongMediaType(request.headers["content-type"]);
        const scope = scopeOf(request);
        const { phone_number_id, mode = "create", encoding: encodingParam } = request.query;
        const encoding = encodingOf(encodingParam, request.headers["content-type"]);
        const account =
          phone_number_id === undefined
            ? await resolveAccount(scope, undefined, "phone_number_id")
            : await requireAccountByPhoneNumberId(scope.db, scope.organizationId, phone_number_id);
        if (Number(request.headers["content-length"] ?? 0) > IMPORT_MAX_BYTES) throw tooLarge();
        // The import's content-type parser hands the request stream on as the body.
        const raw = request.body;
        if (!(raw instanceof Readable)) throw wrongMediaType(request.headers["content-type"]);
        const file = encoding === "utf-8" ? raw : toUtf8(raw, encoding);
        const upload = await receiveUpload(store.db, newId("imp"), file, format);
        // The stream is consumed: what stands for the body from here on (for the
        // idempotency fingerprint in runWrite) is the file's digest and the options.
        request.body = {
          file_sha256: upload.sha256,
          size_bytes: upload.sizeBytes,
          format,
          mode,
          encoding,
          phone_number_id: account.phone_number_id,
        };
        const body = await runWrite(request, reply, async (tx) => {
          const row = await createImport(tx, scope.organizationId, account, upload, { format, mode });
          return {
            status: 202,
            body: { data: importOut(row, [], account.phone_number_id) },
          };
        });
        app.importRunner?.notify();
        return body;
      } catch (error) {
        // The body may be unread: do not keep the connection for another request.
        reply.header("connection", "close");
        throw error;
      }
    },
  );

  app.get(
    "/imports",
    {
      schema: {
        tags,
        summary: "List imports (newest first; errors are omitted here)",
        querystring: Type.Object({ ...PageQuery }, { additionalProperties: false }),
        response: { 200: ListEnvelope(ImportSchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? DEFAULT_LIMIT;
      const organizationId = principalOf(request).organization.id;
      const cursorScope = canonicalScope("native.imports", organizationId, {});
      const { cursor } = request.query;
      const after = cursor === undefined ? undefined : cursors.decode(cursorScope, cursor);
      const rows = await listImports(store.db, organizationId, after, limit + 1);
      const numbers = new Map(
        (await listAccounts(store.db, organizationId)).map((a) => [a.id, a.phone_number_id]),
      );
      const page = pageOf(rows, limit, cursors, cursorScope, (row) =>
        importOut(row, [], numbers.get(row.account_id) ?? null),
      );
      return page;
    },
  );

  app.get(
    "/imports/:id",
    {
      schema: {
        tags,
        summary: "An import's progress, counts and first 1,000 row errors",
        params: Type.Object({ id: Id("imp") }),
        response: { 200: DataEnvelope(ImportSchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request) => {
      const { row, errors } = await getImport(
        store.db,
        principalOf(request).organization.id,
        request.params.id,
      );
      return { data: importOut(row, errors, await phoneNumberIdOf(row)) };
    },
  );
};
