import { buildRow, type ContactInput, normalizeInput, type Scope } from "../../src/domain/contacts.ts";
import { ApiError, isApiError } from "../../src/errors.ts";
import { listAccounts } from "../../src/store/repositories/accounts.ts";
import { insertContactLabelRows, insertContactRows } from "../../src/store/repositories/bulk-insert.ts";
import { existingLabelIds } from "../../src/store/repositories/contacts.ts";
import type { ContactSource } from "../../src/store/schema.ts";

/** One contact of a bulk insert: which account it goes to, its fields, and when it was created. */
export interface BulkContact {
  accountId: string;
  input: ContactInput;
  /** created_at = updated_at, in milliseconds. */
  at: number;
}

export interface BulkInsertResult {
  /** Rows written. */
  inserted: number;
  /** Rows whose identity (phone or BSUID) the account already held: left untouched. */
  skipped: number;
}

/**
 * Insert-only bulk load of new contacts: every input passes the same field
 * rules as a single create (`normalizeInput`, then `buildRow`), and the rows
 * are written with multi-row INSERTs. Runs inside the caller's transaction
 * (one per batch is the fast path). A contact whose identity already exists is
 * skipped, never updated: this is not the batch upsert (spec §3), which owns
 * merge rules and per-item results; it is the loading path the benchmark
 * seeder uses until that lands.
 *
 * An invalid input throws its ApiError with `param` prefixed by the row index
 * (`[12].phone_number`), and nothing of the batch is written (the caller's
 * transaction rolls back).
 */
export async function bulkInsertContacts(
  scope: Scope,
  contacts: readonly BulkContact[],
  source: ContactSource,
): Promise<BulkInsertResult> {
  if (contacts.length === 0) return { inserted: 0, skipped: 0 };
  const accounts = new Set((await listAccounts(scope.db, scope.organizationId)).map((a) => a.id));
  const rows = [];
  const links: { contactId: string; labelIds: string[]; at: number }[] = [];
  const wantedLabels = new Set<string>();
  for (const [index, contact] of contacts.entries()) {
    if (!accounts.has(contact.accountId)) {
      throw new ApiError("resource_not_found", `[${index}]: no such account in this organization.`, {
        param: `[${index}].account_id`,
      });
    }
    let input: ContactInput;
    try {
      input = normalizeInput(contact.input);
    } catch (error) {
      if (!isApiError(error)) throw error;
      throw new ApiError(error.code, `[${index}]: ${error.message}`, {
        param: `[${index}].${error.param ?? ""}`,
      });
    }
    if (!input.phone_number && !input.business_scoped_user_id) {
      throw new ApiError("missing_required_field", `[${index}]: phone_number is required.`, {
        param: `[${index}].phone_number`,
      });
    }
    const row = buildRow(scope.organizationId, contact.accountId, input, source, contact.at);
    rows.push(row);
    if (input.label_ids && input.label_ids.length > 0) {
      links.push({ contactId: row.id, labelIds: input.label_ids, at: contact.at });
      for (const id of input.label_ids) wantedLabels.add(id);
    }
  }
  const found = await existingLabelIds(scope.db, scope.organizationId, [...wantedLabels]);
  const missing = [...wantedLabels].find((id) => !found.has(id));
  if (missing) throw new ApiError("resource_not_found", `No such label: ${missing}.`, { param: "labels" });

  const written = await insertContactRows(scope.db, rows);
  await insertContactLabelRows(
    scope.db,
    links
      .filter((link) => written.has(link.contactId))
      .flatMap((link) =>
        link.labelIds.map((label_id) => ({ contact_id: link.contactId, label_id, created_at: link.at })),
      ),
  );
  return { inserted: written.size, skipped: rows.length - written.size };
}
