import { type Kysely, sql } from "kysely";

/**
 * Runs a migration's statements in one IMMEDIATE transaction: the write lock
 * is taken first, so a writer in another process (a second server, the CLI)
 * cannot commit between a backfill and the triggers that keep it true.
 */
export async function inImmediateTransaction(
  db: Kysely<unknown>,
  statements: readonly string[],
): Promise<void> {
  await sql.raw("BEGIN IMMEDIATE").execute(db);
  try {
    for (const statement of statements) await sql.raw(statement).execute(db);
    await sql.raw("COMMIT").execute(db);
  } catch (error) {
    await sql.raw("ROLLBACK").execute(db);
    throw error;
  }
}
