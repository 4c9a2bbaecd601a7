import { createHash } from "node:crypto";
import { ApiError, type ErrorCode, type FieldNames, isApiError, notFound } from "../errors.ts";
import type { AccountRow } from "../store/repositories/accounts.ts";
import * as repo from "../store/repositories/imports.ts";
import type { ImportFormat, ImportMode } from "../store/schema.ts";
import type { Executor, Tx } from "../store/store.ts";
import { now } from "./clock.ts";
import { type BatchItem, countResults, writeContactBatch } from "./contact-batch.ts";
import type { ContactInput, Scope } from "./contacts.ts";
import { emitEvents } from "./events.ts";
import { resolveLabelRefs } from "./labels.ts";

export type { ImportErrorRow, ImportRow } from "../store/repositories/imports.ts";

/** Spec §3: an import file may be up to 100 MiB. */
export const IMPORT_MAX_BYTES = 100 * 1024 * 1024;
/** The upload is stored in pieces of this size. */
export const CHUNK_BYTES = 1024 * 1024;
/** Row errors kept per import (spec §3: the first 1,000). */
export const MAX_ROW_ERRORS = 1000;

/** A row of an import file that cannot be a contact input: it becomes a row error of the import. */
export interface RowProblem {
  code: ErrorCode;
  message: string;
  param?: string | undefined;
}

/** One row of an import file: a contact input with its label references (ids or names) still to resolve, or its problem. */
export interface ImportRowInput {
  /** 1-based position among the file's data rows. */
  row: number;
  /** Physical line of the file where the row starts (1-based). */
  line: number;
  /** `normalized`: the input already passed the field rules (`normalizeInput`, `requireIdentity`). */
  read: { input: ContactInput; labelRefs: string[]; normalized?: boolean } | { problem: RowProblem };
}

export interface Upload {
  id: string;
  /** Hex SHA-256 of the file: what identifies the body of the request (idempotency fingerprint). */
  sha256: string;
  sizeBytes: number;
  chunkCount: number;
  totalRows: number;
}

export function tooLarge(): ApiError {
  return new ApiError(
    "payload_too_large",
    `An import file may be at most ${IMPORT_MAX_BYTES / 1024 / 1024} MiB.`,
  );
}

/**
 * Stores an uploaded file durably, as it arrives, in pieces (never whole in
 * memory), and counts its rows with `readRows` (the reader the job will use).
 * A file over the limit or one the reader refuses is refused and its pieces are
 * removed. The pieces are written outside any transaction (a long upload must
 * not hold the store); until `createImport` commits, they belong to no import
 * and are swept if the upload never completes.
 */
export async function storeUpload(
  db: Executor,
  uploadId: string,
  source: AsyncIterable<Uint8Array>,
  readRows: (file: AsyncIterable<Uint8Array>) => AsyncIterable<unknown>,
  maxBytes = IMPORT_MAX_BYTES,
): Promise<Upload> {
  let seq = 0;
  let size = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let aborted = false;
  const hash = createHash("sha256");
  const flush = async () => {
    if (pendingBytes === 0 || aborted) return;
    const data = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    await repo.insertChunk(db, uploadId, seq++, data, now());
  };
  async function* storing(): AsyncGenerator<Uint8Array> {
    for await (const raw of source) {
      if (aborted) return;
      const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
      size += chunk.length;
      if (size > maxBytes) throw tooLarge();
      hash.update(chunk);
      for (let start = 0; start < chunk.length; ) {
        const piece = chunk.subarray(start, start + (CHUNK_BYTES - pendingBytes));
        pending.push(piece);
        pendingBytes += piece.length;
        start += piece.length;
        if (pendingBytes >= CHUNK_BYTES) await flush();
      }
      yield chunk;
    }
    await flush();
  }
  const stored = storing();
  // The reader may stop early (a fatal CSV error): the rest is still stored and measured.
  const unclosable: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => ({ next: () => stored.next() }),
  };
  try {
    let totalRows = 0;
    for await (const _record of readRows(unclosable)) totalRows++;
    for await (const _chunk of unclosable) {
      // drain
    }
    return { id: uploadId, sha256: hash.digest("hex"), sizeBytes: size, chunkCount: seq, totalRows };
  } catch (error) {
    // The reader may still be pulling the file: stop the storing first, then remove what it stored.
    aborted = true;
    await stored.return(undefined).catch(() => undefined);
    await repo.deleteChunks(db, uploadId).catch(() => {});
    throw error;
  }
}

/** The stored file, piece by piece. */
export async function* storedFile(db: Executor, row: repo.ImportRow): AsyncGenerator<Buffer> {
  for (let seq = 0; seq < row.chunk_count; seq++) {
    const chunk = await repo.readChunk(db, row.id, seq);
    if (!chunk) throw new Error(`import ${row.id}: piece ${seq} of the file is missing`);
    yield chunk;
  }
}

/** Makes a received upload an import, queued for the runner (in the request's transaction). */
export async function createImport(
  tx: Executor,
  organizationId: string,
  account: AccountRow,
  upload: Upload,
  options: { format: ImportFormat; mode: ImportMode },
): Promise<repo.ImportRow> {
  const at = now();
  const row: repo.ImportRow = {
    id: upload.id,
    organization_id: organizationId,
    account_id: account.id,
    format: options.format,
    mode: options.mode,
    status: "queued",
    size_bytes: upload.sizeBytes,
    chunk_count: upload.chunkCount,
    total_rows: upload.totalRows,
    processed_rows: 0,
    created: 0,
    updated: 0,
    unchanged: 0,
    failed_rows: 0,
    failure: null,
    attempts: 0,
    lease_owner: null,
    lease_until: null,
    created_at: at,
    updated_at: at,
    started_at: null,
    completed_at: null,
  };
  await repo.insertImport(tx, row);
  return row;
}

export async function getImport(
  db: Executor,
  organizationId: string,
  id: string,
): Promise<{ row: repo.ImportRow; errors: repo.ImportErrorRow[] }> {
  const row = await repo.findImport(db, id);
  if (!row || row.organization_id !== organizationId) throw notFound("import", "id");
  return { row, errors: await repo.listImportErrors(db, id, MAX_ROW_ERRORS) };
}

export async function listImports(
  db: Executor,
  organizationId: string,
  after: { created_at: number; id: string } | undefined,
  limit: number,
): Promise<repo.ImportRow[]> {
  return repo.listImports(db, organizationId, after, limit);
}

/** Thrown when a batch finds that its runner no longer holds the import. */
export class LeaseLost extends Error {
  constructor(id: string) {
    super(`import ${id}: the lease was lost`);
    this.name = "LeaseLost";
  }
}

export interface Lease {
  owner: string;
  durationMs: number;
}

/**
 * Applies one batch of an import's rows, in the caller's transaction, together
 * with its counters and row errors: either all of it commits or none, so the
 * counts are exact and a resumed import never counts a row twice. The first
 * statement renews the lease and checks that `processed_rows` is still where
 * this runner left it.
 */
export async function applyImportBatch(
  tx: Tx,
  row: repo.ImportRow,
  account: AccountRow,
  records: ImportRowInput[],
  processedBefore: number,
  lease: Lease,
  names: FieldNames,
): Promise<{ created: number; updated: number; unchanged: number; failed: number }> {
  const at = now();
  if (!(await repo.guardBatch(tx, row.id, lease.owner, processedBefore, at + lease.durationMs, at))) {
    throw new LeaseLost(row.id);
  }
  const scope: Scope = { db: tx, organizationId: row.organization_id };
  const read = records.map((record) => record.read);
  const refs = read.flatMap((r) => ("input" in r ? r.labelRefs : []));
  const resolved = refs.length > 0 ? await resolveLabelRefs(scope, refs) : new Map();
  const items: BatchItem[] = read.map((r) => {
    if ("problem" in r) {
      return { error: new ApiError(r.problem.code, r.problem.message, { param: r.problem.param }) };
    }
    const labelIds: string[] = [];
    for (const ref of r.labelRefs) {
      const found = resolved.get(ref);
      if (found && "error" in found) return { error: found.error as ApiError };
      if (found) labelIds.push(found.id);
    }
    return {
      input: { ...r.input, ...(labelIds.length > 0 ? { label_ids: [...new Set(labelIds)] } : {}) },
      ...(r.normalized ? { normalized: true } : {}),
    };
  });
  const results = await writeContactBatch(scope, account, items, {
    mode: row.mode,
    source: "import",
    ownContacts: (ids) => repo.createdAmong(tx, row.id, ids),
  });
  const counts = countResults(results);
  const slots = Math.max(0, MAX_ROW_ERRORS - (await currentFailed(tx, row.id)));
  const errors = results
    .map((result, i) => ({ result, record: records[i]! }))
    .filter(({ result }) => result.status === "error")
    .slice(0, slots)
    .map(({ result, record }) => {
      const error = result.error?.named(names);
      return {
        import_id: row.id,
        row_no: record.row,
        line: record.line,
        code: error?.code ?? "internal_error",
        message: error?.message ?? "The row could not be imported.",
        param: error?.param ?? null,
      };
    });
  await repo.insertImportErrors(tx, errors);
  if (row.mode === "create") {
    await repo.insertCreated(
      tx,
      row.id,
      results.flatMap((r) => (r.status === "created" && r.id ? [r.id] : [])),
    );
  }
  await repo.addCounts(tx, row.id, {
    processed: records.length,
    created: counts.created,
    updated: counts.updated,
    unchanged: counts.unchanged,
    failed: counts.failed,
  });
  return counts;
}

async function currentFailed(db: Executor, id: string): Promise<number> {
  const row = await db.selectFrom("imports").select("failed_rows").where("id", "=", id).executeTakeFirst();
  return row?.failed_rows ?? 0;
}

/** Ends an import (completed or failed) and frees what it kept: the file and the list of contacts it created. */
export async function finishImport(
  tx: Tx,
  id: string,
  owner: string,
  outcome: { status: "completed" } | { status: "failed"; failure: string },
): Promise<boolean> {
  const at = now();
  const held = await repo.updateHeldImport(tx, id, owner, {
    status: outcome.status,
    failure: outcome.status === "failed" ? outcome.failure : null,
    completed_at: at,
    updated_at: at,
    lease_owner: null,
    lease_until: null,
  });
  if (!held) return false;
  await repo.deleteChunks(tx, id);
  await repo.deleteCreated(tx, id);
  const done = await repo.findImport(tx, id);
  if (done) {
    await emitEvents({ db: tx, organizationId: done.organization_id }, [
      { type: "import.completed", data: { import: importSummary(done) } },
    ]);
  }
  return true;
}

/** What import.completed tells (status completed or failed, and the counts). */
function importSummary(row: repo.ImportRow) {
  return {
    id: row.id,
    object: "import",
    status: row.status,
    account_id: row.account_id,
    mode: row.mode,
    total_rows: row.processed_rows,
    created: row.created,
    updated: row.updated,
    unchanged: row.unchanged,
    failed: row.failed_rows,
    failure: row.failure,
    completed_at: row.completed_at === null ? null : new Date(row.completed_at).toISOString(),
  };
}

/** Why an import stopped, for its `failure` field; domain errors keep their message. */
export function failureOf(error: unknown): string {
  return isApiError(error) ? error.message : "The import stopped on an internal error; see the server log.";
}
