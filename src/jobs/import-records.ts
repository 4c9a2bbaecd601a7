import { isUtf8 } from "node:buffer";
import { Readable } from "node:stream";
import { parse } from "csv-parse";
import { validateMetadata } from "../domain/contact-fields.ts";
import type { ContactInput } from "../domain/contacts.ts";
import { unneutralizeCell } from "../domain/csv-cells.ts";
import {
  applyImportBatch,
  type ImportRowInput,
  type Lease,
  type RowProblem,
  storeUpload,
  type Upload,
} from "../domain/imports.ts";
import { ApiError, type FieldNames, isApiError } from "../errors.ts";
import type { AccountRow } from "../store/repositories/accounts.ts";
import type { ImportRow } from "../store/repositories/imports.ts";
import type { ImportFormat } from "../store/schema.ts";
import type { Executor, Tx } from "../store/store.ts";

/**
 * Reading an import file: CSV (RFC 4180: quoted fields with commas, quotes and
 * newlines, a UTF-8 BOM, CRLF or LF line ends) or NDJSON (one JSON object per
 * line), streamed, one record at a time, in constant memory. The upload and
 * the job read the file with this same code, so the number of rows counted at
 * upload is the number the job processes.
 */

export type { ImportFormat, RowProblem };

export interface ImportRecord {
  /** 1-based position among the file's data rows (the CSV header and blank lines are not rows). */
  row: number;
  /** Physical line of the file where the row starts (1-based). */
  line: number;
  fields?: Record<string, unknown>;
  problem?: RowProblem;
}

/** A record longer than this is malformed (a CSV quote left open swallows the rest of the file). */
export const MAX_RECORD_BYTES = 256 * 1024;

export async function* readRecords(
  source: AsyncIterable<Uint8Array>,
  format: ImportFormat,
): AsyncGenerator<ImportRecord> {
  if (format === "csv") yield* readCsv(source);
  else yield* readNdjson(source);
}

/** Header names are matched to fields case-insensitively, spaces and dashes read as underscores. */
export function fieldKey(header: string): string {
  return header
    .trim()
    .toLowerCase()
    .replace(/[\s-]+/g, "_");
}

const IDENTITY_COLUMNS = new Set(["phone_number", "phone", "business_scoped_user_id"]);

async function* readCsv(source: AsyncIterable<Uint8Array>): AsyncGenerator<ImportRecord> {
  // Records the parser cannot read are skipped by it and reported here, with
  // how many records came before, so that they become row errors in place.
  const skipped: Array<{ after: number; code: string }> = [];
  const parser = parse({
    bom: true,
    relax_column_count: true,
    relax_quotes: true,
    skip_records_with_error: true,
    raw: true,
    max_record_size: MAX_RECORD_BYTES,
    on_skip: (error) => {
      const e = error as { records?: unknown; code?: unknown } | undefined;
      skipped.push({
        after: typeof e?.records === "number" ? e.records : 0,
        code: typeof e?.code === "string" ? e.code : "CSV_INVALID",
      });
      return undefined;
    },
  });
  const input = Readable.from(source, { objectMode: false });
  input.on("error", (error) => parser.destroy(error));
  input.pipe(parser);
  let header: string[] | undefined;
  let row = 0;
  let line = 1;
  /** Records the parser has emitted (skipped ones are not counted, as in its own `records`). */
  let emitted = 0;
  function* problems(before: number): Generator<ImportRecord> {
    while (skipped.length > 0 && skipped[0]!.after < before) {
      const { code } = skipped.shift()!;
      if (header === undefined) {
        throw new ApiError("invalid_field_value", "The CSV header could not be read.", { param: "header" });
      }
      row++;
      yield { row, line, problem: { code: "malformed_row", message: csvProblem(code) } };
    }
  }
  try {
    for await (const { record, raw } of parser as AsyncIterable<{ record: string[]; raw: string }>) {
      emitted++;
      yield* problems(emitted);
      const start = line;
      line += lineBreaks(raw);
      if (record.every((cell) => cell.trim() === "")) continue;
      // The parser decodes UTF-8 and turns every byte sequence that is not
      // UTF-8 into U+FFFD: such a row is reported, never stored mangled.
      const mangled = raw.includes(REPLACEMENT);
      if (header === undefined) {
        if (mangled) throw notUtf8("The CSV header");
        header = record.map((h) => h.trim());
        checkHeader(header);
        continue;
      }
      row++;
      if (mangled) {
        yield { row, line: start, problem: encodingProblem("The row") };
        continue;
      }
      const extra = record.slice(header.length);
      if (record.length < header.length || extra.some((cell) => cell.trim() !== "")) {
        yield {
          row,
          line: start,
          problem: {
            code: "malformed_row",
            message: `The row has ${record.length} fields; the header has ${header.length}.`,
          },
        };
        continue;
      }
      const fields: Record<string, unknown> = {};
      header.forEach((name, i) => {
        if (name !== "")
          Object.defineProperty(fields, name, { value: record[i], enumerable: true, writable: true });
      });
      yield { row, line: start, fields };
    }
    yield* problems(Number.POSITIVE_INFINITY);
  } finally {
    input.destroy();
  }
}

const REPLACEMENT = "\uFFFD";

const ENCODING_ADVICE =
  "is not UTF-8 text (a Latin-1 or Windows-1252 file, e.g. saved by Excel?): re-save the file as UTF-8, " +
  "or send it with ?encoding=latin1. Nothing of it was stored.";

function encodingProblem(what: string): RowProblem {
  return { code: "invalid_encoding", message: `${what} ${ENCODING_ADVICE}` };
}

function notUtf8(what: string): ApiError {
  return new ApiError("invalid_encoding", `${what} ${ENCODING_ADVICE}`, { param: "encoding" });
}

/** Line breaks in a raw record (CRLF, LF or CR each count once). */
function lineBreaks(raw: string): number {
  let count = 0;
  for (let i = 0; i < raw.length; i++) {
    const ch = raw.charCodeAt(i);
    if (ch === 10) count++;
    else if (ch === 13) {
      count++;
      if (raw.charCodeAt(i + 1) === 10) i++;
    }
  }
  return count;
}

function csvProblem(code: string): string {
  if (code === "CSV_QUOTE_NOT_CLOSED")
    return "A quoted field is never closed; the rest of the file could not be read.";
  if (code === "CSV_MAX_RECORD_SIZE") {
    return `The row is longer than ${MAX_RECORD_BYTES / 1024} KiB; the rest of the file could not be read.`;
  }
  return `The row is not valid CSV (${code}).`;
}

function checkHeader(header: string[]): void {
  const seen = new Set<string>();
  for (const name of header) {
    if (name === "") continue;
    const key = KNOWN_FIELDS.has(fieldKey(name)) ? fieldKey(name) : name;
    if (seen.has(key)) {
      throw new ApiError("invalid_field_value", `The CSV header names the column "${name}" twice.`, {
        param: "header",
      });
    }
    seen.add(key);
  }
  if (!header.some((name) => IDENTITY_COLUMNS.has(fieldKey(name)))) {
    throw new ApiError(
      "missing_required_field",
      "The CSV header needs a phone_number (or business_scoped_user_id) column.",
      { param: "phone_number" },
    );
  }
}

async function* readNdjson(source: AsyncIterable<Uint8Array>): AsyncGenerator<ImportRecord> {
  let parts: Buffer[] = [];
  let length = 0;
  let overflow = false;
  let line = 0;
  let row = 0;
  function* emit(): Generator<ImportRecord> {
    line++;
    const tooLong = overflow;
    const bytes = Buffer.concat(parts, length);
    parts = [];
    length = 0;
    overflow = false;
    if (tooLong) {
      row++;
      yield {
        row,
        line,
        problem: {
          code: "malformed_row",
          message: `The line is longer than ${MAX_RECORD_BYTES / 1024} KiB.`,
        },
      };
      return;
    }
    if (!isUtf8(bytes)) {
      row++;
      yield { row, line, problem: encodingProblem("The line") };
      return;
    }
    let text = bytes.toString("utf8");
    if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.trim() === "") return;
    row++;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      yield { row, line, problem: { code: "invalid_json", message: "The line is not valid JSON." } };
      return;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      yield { row, line, problem: { code: "invalid_json", message: "The line must be a JSON object." } };
      return;
    }
    yield { row, line, fields: value as Record<string, unknown> };
  }
  const append = (piece: Buffer) => {
    if (overflow || piece.length === 0) return;
    if (length + piece.length > MAX_RECORD_BYTES) {
      overflow = true;
      parts = [];
      length = 0;
      return;
    }
    parts.push(piece);
    length += piece.length;
  };
  for await (const raw of source) {
    const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(10, start);
      if (newline === -1) {
        append(chunk.subarray(start));
        break;
      }
      append(chunk.subarray(start, newline));
      yield* emit();
      start = newline + 1;
    }
  }
  if (length > 0 || overflow) yield* emit();
}

// ---------------------------------------------------------------------------
// Record → contact input

/** Columns (CSV) and keys (NDJSON) that set fields. Everything else, unless ignored, is metadata. */
const KNOWN_FIELDS = new Set([
  "phone_number",
  "phone",
  "name",
  "display_name",
  "email",
  "labels",
  "metadata",
  "business_scoped_user_id",
]);

/**
 * Read-only fields of the export (and of the contact representation): they are
 * ignored on import, so that an exported file imports back unchanged.
 */
export const IGNORED_FIELDS = new Set([
  "id",
  "object",
  "wa_id",
  "whatsapp_account",
  "phone_number_id",
  "account_phone_number",
  "source",
  "marketing_opt_out",
  "created_at",
  "updated_at",
  "profile_name",
  "username",
  "parent_business_scoped_user_id",
]);

/** A record read as a contact input, with its label references (ids or names) still to resolve. */
export type RecordInput = { input: ContactInput; labelRefs: string[] } | { problem: RowProblem };

function problemOf(error: unknown): RowProblem {
  if (isApiError(error)) return { code: error.code, message: error.message, param: error.param };
  throw error;
}

/**
 * Maps a record to a contact input. CSV cells are text and an empty cell sets
 * nothing; in NDJSON, null clears a field (as in PATCH). `name` sets the
 * display name; when the file has a `display_name` column or key, that one
 * sets it and `name` is ignored (the export writes both: `name` as shown,
 * `display_name` as stored). `labels`: label ids or names separated by `|`
 * (CSV) or an array (NDJSON). `metadata`: a JSON object, merged. Any other
 * column or key is a metadata key.
 */
export function recordInput(record: ImportRecord, format: ImportFormat): RecordInput {
  if (record.problem) return { problem: record.problem };
  const fields = record.fields ?? {};
  try {
    return format === "csv" ? csvInput(fields as Record<string, string>) : ndjsonInput(fields);
  } catch (error) {
    return { problem: problemOf(error) };
  }
}

function csvInput(fields: Record<string, string>): RecordInput {
  const input: ContactInput = {};
  const labelRefs: string[] = [];
  const metadata: Record<string, unknown> = {};
  const extra: Record<string, unknown> = {};
  const byKey = new Map<string, string>();
  for (const [name, raw] of Object.entries(fields)) {
    const key = fieldKey(name);
    if (IGNORED_FIELDS.has(key)) continue;
    // A cell the export neutralised against spreadsheet formulas gets its value back.
    const value = unneutralizeCell(raw).trim();
    if (KNOWN_FIELDS.has(key)) {
      byKey.set(key === "phone" ? "phone_number" : key, value);
      continue;
    }
    if (value !== "") Object.defineProperty(extra, name, { value, enumerable: true, writable: true });
  }
  const text = (key: string) => {
    const value = byKey.get(key);
    return value === undefined || value === "" ? undefined : value;
  };
  input.phone_number = text("phone_number");
  input.business_scoped_user_id = text("business_scoped_user_id");
  input.email = text("email");
  input.display_name = byKey.has("display_name") ? text("display_name") : text("name");
  const labels = text("labels");
  if (labels) labelRefs.push(...splitLabels(labels));
  const json = text("metadata");
  if (json !== undefined) Object.assign(metadata, parseMetadataCell(json));
  for (const [key, value] of Object.entries(extra)) {
    Object.defineProperty(metadata, key, { value, enumerable: true, writable: true });
  }
  if (Object.keys(metadata).length > 0) input.metadata = validateMetadata(metadata, "metadata");
  return { input, labelRefs };
}

function splitLabels(cell: string): string[] {
  return cell
    .split("|")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

function parseMetadataCell(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ApiError("invalid_metadata", "The metadata column must hold a JSON object.", {
      param: "metadata",
    });
  }
  return value as Record<string, unknown>;
}

function ndjsonInput(fields: Record<string, unknown>): RecordInput {
  const input: ContactInput = {};
  const labelRefs: string[] = [];
  const extra: Record<string, unknown> = {};
  const str = (key: string, nullable: boolean): string | null | undefined => {
    const value = fields[key];
    if (value === undefined) return undefined;
    if (value === null && nullable) return null;
    if (typeof value !== "string") {
      throw new ApiError("invalid_field_value", `${key} must be a string${nullable ? " or null" : ""}.`, {
        param: key,
      });
    }
    return value;
  };
  for (const [key, value] of Object.entries(fields)) {
    if (KNOWN_FIELDS.has(key) || IGNORED_FIELDS.has(key)) continue;
    Object.defineProperty(extra, key, { value, enumerable: true, writable: true });
  }
  // An identity given as null (as the export writes a missing one) is simply not given.
  input.phone_number = (str("phone_number", true) ?? str("phone", true)) || undefined;
  input.business_scoped_user_id = str("business_scoped_user_id", true) || undefined;
  input.email = str("email", true);
  input.display_name = "display_name" in fields ? str("display_name", true) : str("name", true);
  const metadata = fields.metadata;
  if (metadata === null) input.replace_metadata = true;
  else if (metadata !== undefined && (typeof metadata !== "object" || Array.isArray(metadata))) {
    throw new ApiError("invalid_metadata", "metadata must be a JSON object or null.", {
      param: "metadata",
    });
  }
  const merged = { ...((metadata as Record<string, unknown> | null | undefined) ?? {}) };
  for (const [key, value] of Object.entries(extra)) {
    Object.defineProperty(merged, key, { value, enumerable: true, writable: true });
  }
  if (Object.keys(merged).length > 0) input.metadata = validateMetadata(merged, "metadata");
  const labels = fields.labels;
  if (labels !== undefined && labels !== null) {
    const list = typeof labels === "string" ? splitLabels(labels) : labels;
    if (!Array.isArray(list)) {
      throw new ApiError("invalid_field_value", "labels must be an array of label ids or names.", {
        param: "labels",
      });
    }
    for (const entry of list) {
      const ref =
        typeof entry === "string"
          ? entry
          : typeof entry === "object" &&
              entry !== null &&
              typeof (entry as { name?: unknown }).name === "string"
            ? (entry as { name: string }).name
            : undefined;
      if (ref === undefined) {
        throw new ApiError("invalid_field_value", "labels must be an array of label ids or names.", {
          param: "labels",
        });
      }
      labelRefs.push(ref);
    }
  }
  return { input, labelRefs };
}

// ---------------------------------------------------------------------------
// An import file, received and applied

/** The import file's names of the domain's fields (its columns), for row errors. */
export const IMPORT_FIELDS: FieldNames = { display_name: "name", label_ids: "labels" };

/**
 * Stores an uploaded import file (see `storeUpload`), counting its rows with
 * the reader the job will use, so an unusable CSV header is refused at once.
 */
export function receiveUpload(
  db: Executor,
  uploadId: string,
  source: AsyncIterable<Uint8Array>,
  format: ImportFormat,
  maxBytes?: number,
): Promise<Upload> {
  return storeUpload(db, uploadId, source, (file) => readRecords(file, format), maxBytes);
}

/**
 * Applies one batch of an import file's records (see `applyImportBatch`):
 * each record read as a contact input, its row errors named as the file
 * names its columns.
 */
export function commitImportBatch(
  tx: Tx,
  row: ImportRow,
  account: AccountRow,
  records: ImportRecord[],
  processedBefore: number,
  lease: Lease,
): Promise<{ created: number; updated: number; unchanged: number; failed: number }> {
  const rows: ImportRowInput[] = records.map((record) => ({
    row: record.row,
    line: record.line,
    read: recordInput(record, row.format),
  }));
  return applyImportBatch(tx, row, account, rows, processedBefore, lease, IMPORT_FIELDS);
}
