import { type Insertable, type Selectable, sql, type Updateable } from "kysely";
import type { ImportErrorsTable, ImportsTable } from "../schema.ts";
import type { Executor } from "../store.ts";

export type ImportRow = Selectable<ImportsTable>;
export type ImportErrorRow = Selectable<ImportErrorsTable>;

export async function insertChunk(db: Executor, uploadId: string, seq: number, data: Buffer, at: number) {
  await db.insertInto("import_chunks").values({ upload_id: uploadId, seq, data, created_at: at }).execute();
}

export async function readChunk(db: Executor, uploadId: string, seq: number): Promise<Buffer | undefined> {
  const row = await db
    .selectFrom("import_chunks")
    .select("data")
    .where("upload_id", "=", uploadId)
    .where("seq", "=", seq)
    .executeTakeFirst();
  return row ? Buffer.from(row.data) : undefined;
}

export async function deleteChunks(db: Executor, uploadId: string): Promise<void> {
  await db.deleteFrom("import_chunks").where("upload_id", "=", uploadId).execute();
}

/** Chunks of uploads that never became an import (the upload failed or its process died), older than `before`. */
export async function deleteOrphanChunks(db: Executor, before: number): Promise<number> {
  const result = await db
    .deleteFrom("import_chunks")
    .where("created_at", "<", before)
    .where((eb) =>
      eb.not(
        eb.exists(
          eb.selectFrom("imports").select("id").whereRef("imports.id", "=", "import_chunks.upload_id"),
        ),
      ),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

export async function insertImport(db: Executor, row: Insertable<ImportsTable>): Promise<void> {
  await db.insertInto("imports").values(row).execute();
}

export async function findImport(db: Executor, id: string): Promise<ImportRow | undefined> {
  return db.selectFrom("imports").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function listImports(
  db: Executor,
  organizationId: string,
  after: { created_at: number; id: string } | undefined,
  limit: number,
): Promise<ImportRow[]> {
  let query = db.selectFrom("imports").selectAll().where("organization_id", "=", organizationId);
  if (after) {
    query = query.where((eb) =>
      eb(eb.refTuple("created_at", "id"), "<", eb.tuple(after.created_at, after.id)),
    );
  }
  return query.orderBy("created_at", "desc").orderBy("id", "desc").limit(limit).execute();
}

export async function listImportErrors(
  db: Executor,
  importId: string,
  limit: number,
): Promise<ImportErrorRow[]> {
  return db
    .selectFrom("import_errors")
    .selectAll()
    .where("import_id", "=", importId)
    .orderBy("row_no", "asc")
    .limit(limit)
    .execute();
}

export async function insertImportErrors(db: Executor, rows: Insertable<ImportErrorsTable>[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 500) {
    await db
      .insertInto("import_errors")
      .values(rows.slice(i, i + 500))
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
}

export async function insertCreated(db: Executor, importId: string, contactIds: string[]): Promise<void> {
  for (let i = 0; i < contactIds.length; i += 500) {
    await db
      .insertInto("import_created")
      .values(contactIds.slice(i, i + 500).map((contact_id) => ({ import_id: importId, contact_id })))
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
}

export async function createdAmong(
  db: Executor,
  importId: string,
  contactIds: string[],
): Promise<Set<string>> {
  if (contactIds.length === 0) return new Set();
  const rows = await db
    .selectFrom("import_created")
    .select("contact_id")
    .where("import_id", "=", importId)
    .where("contact_id", "in", contactIds)
    .execute();
  return new Set(rows.map((r) => r.contact_id));
}

export async function deleteCreated(db: Executor, importId: string): Promise<void> {
  await db.deleteFrom("import_created").where("import_id", "=", importId).execute();
}

const PENDING = ["queued", "running"] as const;

/**
 * Takes the lease of the oldest import waiting for a runner (queued, or
 * running under an expired lease: its runner died). A conditional update, so
 * of two runners racing for one import exactly one wins.
 */
export async function claimImport(
  db: Executor,
  owner: string,
  at: number,
  leaseMs: number,
  importId?: string,
): Promise<ImportRow | undefined> {
  let candidates = db
    .selectFrom("imports")
    .select("id")
    .where("status", "in", PENDING)
    .where((eb) => eb.or([eb("lease_until", "is", null), eb("lease_until", "<", at)]));
  if (importId) candidates = candidates.where("id", "=", importId);
  const rows = await candidates.orderBy("created_at", "asc").orderBy("id", "asc").limit(5).execute();
  for (const { id } of rows) {
    const result = await db
      .updateTable("imports")
      .set({
        status: "running",
        lease_owner: owner,
        lease_until: at + leaseMs,
        attempts: sql<number>`attempts + 1`,
        started_at: sql<number>`coalesce(started_at, ${at})`,
        updated_at: at,
      })
      .where("id", "=", id)
      .where("status", "in", PENDING)
      .where((eb) => eb.or([eb("lease_until", "is", null), eb("lease_until", "<", at)]))
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) > 0) return findImport(db, id);
  }
  return undefined;
}

/**
 * Renews the lease and checks the checkpoint in one statement, at the start of
 * a batch's transaction: false when another runner took the import or the
 * counts moved (then the batch must not be applied).
 */
export async function guardBatch(
  db: Executor,
  id: string,
  owner: string,
  processedRows: number,
  leaseUntil: number,
  at: number,
): Promise<boolean> {
  const result = await db
    .updateTable("imports")
    .set({ lease_until: leaseUntil, updated_at: at })
    .where("id", "=", id)
    .where("lease_owner", "=", owner)
    .where("status", "=", "running")
    .where("processed_rows", "=", processedRows)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export async function addCounts(
  db: Executor,
  id: string,
  counts: { processed: number; created: number; updated: number; unchanged: number; failed: number },
): Promise<void> {
  await db
    .updateTable("imports")
    .set({
      processed_rows: sql<number>`processed_rows + ${counts.processed}`,
      created: sql<number>`created + ${counts.created}`,
      updated: sql<number>`updated + ${counts.updated}`,
      unchanged: sql<number>`unchanged + ${counts.unchanged}`,
      failed_rows: sql<number>`failed_rows + ${counts.failed}`,
    })
    .where("id", "=", id)
    .execute();
}

/** Updates an import this runner holds; false when it does not hold it any more. */
export async function updateHeldImport(
  db: Executor,
  id: string,
  owner: string,
  patch: Updateable<ImportsTable>,
): Promise<boolean> {
  const result = await db
    .updateTable("imports")
    .set(patch)
    .where("id", "=", id)
    .where("lease_owner", "=", owner)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
