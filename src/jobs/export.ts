import { setImmediate as nextTurn } from "node:timers/promises";
import { toIso } from "../domain/clock.ts";
import { type ContactView, listContacts, type Scope } from "../domain/contacts.ts";
import { neutralizeCell } from "../domain/csv-cells.ts";
import { phoneDigits } from "../domain/phone.ts";
import type { ContactFilters, Keyset } from "../store/repositories/contacts.ts";

/**
 * The export file: every contact matching filters, as CSV or NDJSON (one
 * contact representation a line), streamed in batches. Written by
 * `GET /v1/contacts/export` and by `phonebook export`. The CSV columns are
 * the file's own; an NDJSON line is the representation the caller gives
 * (both callers give the native surface's, docs/imports-and-export.md), so
 * that this module depends on no surface.
 */

export type ExportFormat = "csv" | "ndjson";

/** How a contact is written as one NDJSON line. */
export type ContactRecord = (contact: ContactView) => unknown;

export interface ExportOptions {
  /** CSV: cells exported as stored, formula-like ones included (no leading '). */
  raw?: boolean | undefined;
  /** NDJSON: the representation of each line. */
  record?: ContactRecord | undefined;
}

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
 * doubled; unless `raw`, cells a spreadsheet would run as formulas are
 * neutralised first (OWASP CSV injection, src/domain/csv-cells.ts).
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
    wa_id: phoneDigits(view.phone_number),
    phone_number_id: view.account_phone_number_id,
    source: view.source,
    marketing_opt_out: view.marketing_opt_out === 1 ? "true" : "false",
    created_at: toIso(view.created_at),
    updated_at: toIso(view.updated_at),
  };
  return `${CSV_COLUMNS.map((c) => csvField(values[c], raw)).join(",")}\r\n`;
}

/** How one contact becomes one line of the file. */
function lineWriter(format: ExportFormat, options: ExportOptions): (contact: ContactView) => string {
  if (format === "csv") {
    const raw = options.raw === true;
    return (contact) => csvRow(contact, raw);
  }
  const record = options.record;
  if (record === undefined) throw new Error("An NDJSON export needs the representation of its lines.");
  return (contact) => `${JSON.stringify(record(contact))}\n`;
}

/**
 * Every contact matching the filters, newest first, as text: one query per
 * EXPORT_BATCH contacts (keyset, so the thousandth batch costs what the first
 * costs), one string per batch. Pulled by the consumer, so a slow reader
 * slows the queries instead of filling memory.
 */
export function exportContacts(
  scope: Scope,
  filters: ContactFilters,
  format: "csv",
  batchSize?: number,
  options?: ExportOptions,
): AsyncGenerator<string>;
export function exportContacts(
  scope: Scope,
  filters: ContactFilters,
  format: ExportFormat,
  batchSize: number,
  options: ExportOptions & { record: ContactRecord },
): AsyncGenerator<string>;
export async function* exportContacts(
  scope: Scope,
  filters: ContactFilters,
  format: ExportFormat,
  batchSize = EXPORT_BATCH,
  options: ExportOptions = {},
): AsyncGenerator<string> {
  const lineOf = lineWriter(format, options);
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
      piece += lineOf(row);
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
