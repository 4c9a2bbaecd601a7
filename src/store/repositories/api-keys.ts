import type { Insertable, Selectable } from "kysely";
import type { ApiKeysTable } from "../schema.ts";
import { type Executor, firstRow } from "../store.ts";

export type ApiKeyRow = Selectable<ApiKeysTable>;

export async function insertApiKey(db: Executor, row: Insertable<ApiKeysTable>): Promise<void> {
  await db.insertInto("api_keys").values(row).execute();
}

/** Every authenticated request (on a cache miss): a named prepared statement on PostgreSQL. */
export async function findApiKeyByHash(db: Executor, keyHash: string): Promise<ApiKeyRow | undefined> {
  return firstRow<ApiKeyRow>(
    db,
    db.selectFrom("api_keys").selectAll().where("key_hash", "=", keyHash).compile(),
  );
}

export async function findApiKey(db: Executor, id: string): Promise<ApiKeyRow | undefined> {
  return db.selectFrom("api_keys").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function revokeApiKey(db: Executor, id: string, at: number): Promise<void> {
  await db
    .updateTable("api_keys")
    .set({ revoked_at: at })
    .where("id", "=", id)
    .where("revoked_at", "is", null)
    .execute();
}

/** An organisation's keys, newest first, as a keyset page (`created_at desc, id desc`). */
export async function listApiKeys(
  db: Executor,
  organizationId: string,
  page: { limit: number; after?: { created_at: number; id: string } | undefined },
): Promise<ApiKeyRow[]> {
  let query = db.selectFrom("api_keys").selectAll().where("organization_id", "=", organizationId);
  if (page.after) {
    const { created_at, id } = page.after;
    query = query.where((eb) => eb(eb.refTuple("created_at", "id"), "<", eb.tuple(created_at, id)));
  }
  return query.orderBy("created_at", "desc").orderBy("id", "desc").limit(page.limit).execute();
}
