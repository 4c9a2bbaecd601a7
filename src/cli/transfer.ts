import { createReadStream } from "node:fs";
import { access } from "node:fs/promises";
import { basename, extname } from "node:path";
import { contactFilters } from "../domain/contacts.ts";
import { createImport, getImport } from "../domain/imports.ts";
import { ApiError, notFound } from "../errors.ts";
import { importOut } from "../http/native/imports.ts";
import { contactOut } from "../http/native/representation.ts";
import { newId } from "../ids.ts";
import { EXPORT_BATCH, type ExportFormat, exportContacts } from "../jobs/export.ts";
import { type ImportFormat, receiveUpload } from "../jobs/import-records.ts";
import { ImportRunner } from "../jobs/import-runner.ts";
import { type AccountRow, findAccountByPhoneNumberId } from "../store/repositories/accounts.ts";
import type { ImportMode } from "../store/schema.ts";
import type { Store } from "../store/store.ts";

/** What the transfer commands print through: lines, a progress line, raw output with backpressure. */
export interface TransferIo {
  out: (line: string) => void;
  /** Replaces the current progress line (stderr); a no-op when stderr is not a terminal. */
  progress: (line: string) => void;
  /** Raw output (stdout), resolving when the consumer can take more. */
  write: (chunk: string) => Promise<void>;
}

async function accountOf(store: Store, phoneNumberId: string): Promise<AccountRow> {
  const account = await findAccountByPhoneNumberId(store.db, phoneNumberId);
  if (!account) throw notFound("account", "--account");
  return account;
}

function formatOfFile(file: string, given: string | undefined): ImportFormat {
  const format = given ?? ([".ndjson", ".jsonl"].includes(extname(file).toLowerCase()) ? "ndjson" : "csv");
  if (format !== "csv" && format !== "ndjson") {
    throw new ApiError("invalid_field_value", "--format must be csv or ndjson.", { param: "--format" });
  }
  return format;
}

const number = (n: number) => n.toLocaleString("en-US");

export function progressBar(done: number, total: number, width = 30): string {
  const ratio = total === 0 ? 1 : Math.min(1, done / total);
  const filled = Math.round(ratio * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${String(Math.floor(ratio * 100)).padStart(3)}%  ${number(done)}/${number(total)} rows`;
}

/**
 * `phonebook import FILE --account ID`: stores the file as an import (as
 * `POST /v1/imports` does), runs it here with a progress bar, prints a
 * summary. A server on the same store may take part in the work; the counts
 * are the same either way. Returns the exit code: 0 when the import
 * completed (row errors included), 1 when it failed.
 */
export async function importCommand(
  store: Store,
  options: {
    file: string;
    account: string;
    mode?: string | undefined;
    format?: string | undefined;
    json: boolean;
  },
  io: TransferIo,
): Promise<number> {
  const mode = (options.mode ?? "create") as ImportMode;
  if (mode !== "create" && mode !== "upsert") {
    throw new ApiError("invalid_field_value", "--mode must be create or upsert.", { param: "--mode" });
  }
  const format = formatOfFile(options.file, options.format);
  const account = await accountOf(store, options.account);
  try {
    await access(options.file);
  } catch {
    throw new ApiError("resource_not_found", `Cannot read ${options.file}.`, { param: "FILE" });
  }
  const upload = await receiveUpload(store.db, newId("imp"), createReadStream(options.file), format);
  const row = await store.transaction((tx) =>
    createImport(tx, account.organization_id, account, upload, { format, mode }),
  );
  const runner = new ImportRunner(store, { pollMs: 100 });
  runner.start();
  let current = row;
  try {
    for (;;) {
      current = (await getImport(store.db, account.organization_id, row.id)).row;
      io.progress(progressBar(current.processed_rows, current.total_rows));
      if (current.status === "completed" || current.status === "failed") break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    await runner.stop();
  }
  const { row: done, errors } = await getImport(store.db, account.organization_id, row.id);
  io.progress("");
  if (options.json) {
    io.out(JSON.stringify(importOut(done, errors, account.phone_number_id)));
  } else {
    const lines = [
      `${done.status === "completed" ? "Imported" : "Import failed:"} ${basename(options.file)} into ${account.phone_number_id} (${done.id})`,
      `  ${number(done.processed_rows)} of ${number(done.total_rows)} rows: ${number(done.created)} created, ${number(done.updated)} updated, ${number(done.unchanged)} unchanged, ${number(done.failed_rows)} failed`,
    ];
    if (done.failure) lines.push(`  ${done.failure}`);
    if (errors.length > 0) {
      lines.push("  First row errors:");
      for (const e of errors.slice(0, 10)) {
        lines.push(`    row ${e.row_no} (line ${e.line}): ${e.code}: ${e.message}`);
      }
      if (done.failed_rows > 10) lines.push(`    … see GET /v1/imports/${done.id} for up to 1,000`);
    }
    io.out(lines.join("\n"));
  }
  return done.status === "completed" ? 0 : 1;
}

/** `phonebook export --account ID [--format csv|ndjson]`: every contact of the account to stdout, streamed. */
export async function exportCommand(
  store: Store,
  options: { account: string; format?: string | undefined; json: boolean },
  io: TransferIo,
): Promise<number> {
  const format = (options.format ?? (options.json ? "ndjson" : "csv")) as ExportFormat;
  if (format !== "csv" && format !== "ndjson") {
    throw new ApiError("invalid_field_value", "--format must be csv or ndjson.", { param: "--format" });
  }
  const account = await accountOf(store, options.account);
  const scope = { db: store.db, organizationId: account.organization_id };
  try {
    for await (const chunk of exportContacts(
      scope,
      contactFilters(account.organization_id, account.id, {}),
      format,
      EXPORT_BATCH,
      { record: contactOut },
    )) {
      await io.write(chunk);
    }
  } catch (error) {
    // The reader stopped early (`phonebook export | head`): what it wanted was written.
    if ((error as NodeJS.ErrnoException).code === "EPIPE") return 0;
    throw error;
  }
  return 0;
}
