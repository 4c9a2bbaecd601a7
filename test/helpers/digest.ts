import { createHash } from "node:crypto";
import { sql } from "kysely";
import type { Store } from "../../src/store/store.ts";

/**
 * A cheap fingerprint of every row of every table of a store (tables are
 * listed from the catalogue, so tables added by later migrations are covered
 * without edits). Two equal digests mean no row was added, removed or changed.
 * Fine for the small stores of the fuzzer, not for a million rows. On
 * PostgreSQL the server renders and hashes each table's rows in one
 * statement (a round trip per table, twice per fuzzed request, was most of
 * the fuzzer's time there).
 */
export async function storeDigest(store: Store): Promise<string> {
  // The trigram index's own tables (SQLite FTS5 shadow tables) are derived
  // from contacts, which are compared, and merged in the background
  // (jobs/search-index.ts): their pages change without any row changing.
  const tables = (await tableNames(store)).filter((name) => !name.startsWith("contacts_fts"));
  const hash = createHash("sha256");
  if (store.dialect === "postgres") {
    // One round trip: each table's rows as text (every column), sorted, hashed by the server.
    const parts = tables.map(
      (table) =>
        sql`SELECT ${table}::text AS name, md5(coalesce(string_agg(digest_row::text, E'\n' ORDER BY digest_row::text COLLATE "C"), '')) AS rows FROM ${sql.table(table)} digest_row`,
    );
    const { rows } = await sql<{ name: string; rows: string }>`${sql.join(parts, sql` UNION ALL `)}`.execute(
      store.db,
    );
    for (const row of rows.sort((a, b) => (a.name < b.name ? -1 : 1)))
      hash.update(`${row.name}\n${row.rows}\n`);
    return hash.digest("hex");
  }
  for (const table of tables) {
    const { rows } = await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(table)}`.execute(store.db);
    const lines = rows.map((row) => JSON.stringify(row, (_k, v) => (typeof v === "bigint" ? String(v) : v)));
    lines.sort();
    hash.update(`${table}\n${lines.join("\n")}\n`);
  }
  return hash.digest("hex");
}

export async function tableNames(store: Store): Promise<string[]> {
  if (store.dialect === "sqlite") {
    const { rows } = await sql<{ name: string }>`
      SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name
    `.execute(store.db);
    return rows.map((r) => r.name);
  }
  const { rows } = await sql<{ name: string }>`
    SELECT table_name AS name FROM information_schema.tables
    WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name
  `.execute(store.db);
  return rows.map((r) => r.name);
}
