import type { Insertable } from "kysely";
import type { ContactLabelsTable, ContactsTable, LabelsTable } from "../schema.ts";
import { type Dialect, dialectOf, type Executor } from "../store.ts";

/**
 * Insert-only bulk writes: multi-row INSERT statements, many rows per round
 * trip. The caller owns the transaction (one per batch is the fast path on
 * both stores: SQLite commits once, PostgreSQL does one round trip per chunk).
 * Rows whose identity is already taken are skipped, not updated; upserts are
 * the batch-upsert path's job.
 */

/**
 * Rows per statement. SQLite allows 32,766 bound parameters and PostgreSQL
 * 65,535; contacts have 17 columns, so 1,000 rows stay well inside both.
 */
const ROWS_PER_STATEMENT: Record<Dialect, number> = { sqlite: 1000, postgres: 1000 };

function chunks<T>(rows: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
}

/** Inserts contact rows; returns the ids actually written (a taken identity is skipped). */
export async function insertContactRows(
  db: Executor,
  rows: readonly Insertable<ContactsTable>[],
): Promise<Set<string>> {
  const dialect = dialectOf(db);
  const written = new Set<string>();
  for (const chunk of chunks(rows, ROWS_PER_STATEMENT[dialect])) {
    const result = await db
      .insertInto("contacts")
      .values(chunk)
      .onConflict((oc) => oc.doNothing())
      .returning("id")
      .execute();
    for (const row of result) written.add(row.id);
  }
  return written;
}

export async function insertLabelRows(db: Executor, rows: readonly Insertable<LabelsTable>[]): Promise<void> {
  const dialect = dialectOf(db);
  for (const chunk of chunks(rows, ROWS_PER_STATEMENT[dialect])) {
    await db.insertInto("labels").values(chunk).execute();
  }
}

export async function insertContactLabelRows(
  db: Executor,
  rows: readonly Insertable<ContactLabelsTable>[],
): Promise<void> {
  const dialect = dialectOf(db);
  // Three columns per row: the statement can be larger.
  for (const chunk of chunks(rows, ROWS_PER_STATEMENT[dialect] * 5)) {
    await db
      .insertInto("contact_labels")
      .values(chunk)
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
}
