import { sql } from "kysely";
import type { Executor } from "../store.ts";

/**
 * One bounded step of merging the SQLite trigram index (contacts_fts) into a
 * single segment: FTS5's incremental 'merge' command, with a negative page
 * count so that segments of every level are merged (as 'optimize' does, in
 * slices). Writes about `pages` pages; returns whether work remains (FTS5's
 * documented test: the command changed at least 2 rows). On one connection
 * (Kysely's SQLite driver has one), so total_changes() counts this command.
 */
export async function mergeSearchIndexStep(db: Executor, pages: number): Promise<boolean> {
  const before = await totalChanges(db);
  await sql`INSERT INTO contacts_fts (contacts_fts, rank) VALUES ('merge', ${-Math.abs(pages)})`.execute(db);
  return (await totalChanges(db)) - before >= 2;
}

async function totalChanges(db: Executor): Promise<number> {
  const { rows } = await sql<{ n: number }>`SELECT total_changes() AS n`.execute(db);
  return Number(rows[0]?.n ?? 0);
}
