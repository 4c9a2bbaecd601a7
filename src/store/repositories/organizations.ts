import type { Insertable, Selectable, Updateable } from "kysely";
import type { OrganizationsTable } from "../schema.ts";
import { type Executor, firstRow } from "../store.ts";

export type OrganizationRow = Selectable<OrganizationsTable>;

export async function insertOrganization(db: Executor, row: Insertable<OrganizationsTable>): Promise<void> {
  await db.insertInto("organizations").values(row).execute();
}

/** Every authenticated request (on a cache miss): a named prepared statement on PostgreSQL. */
export async function findOrganization(db: Executor, id: string): Promise<OrganizationRow | undefined> {
  return firstRow<OrganizationRow>(
    db,
    db.selectFrom("organizations").selectAll().where("id", "=", id).compile(),
  );
}

export async function countOrganizations(db: Executor): Promise<number> {
  const row = await db
    .selectFrom("organizations")
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Keyset page in `created_at desc, id desc` order. */
export async function listOrganizations(
  db: Executor,
  page: { limit: number; after?: { created_at: number; id: string } | undefined },
): Promise<OrganizationRow[]> {
  let query = db.selectFrom("organizations").selectAll();
  if (page.after) {
    const { created_at, id } = page.after;
    query = query.where((eb) => eb(eb.refTuple("created_at", "id"), "<", eb.tuple(created_at, id)));
  }
  return query.orderBy("created_at", "desc").orderBy("id", "desc").limit(page.limit).execute();
}

export async function updateOrganization(
  db: Executor,
  id: string,
  patch: Updateable<OrganizationsTable>,
): Promise<OrganizationRow | undefined> {
  await db.updateTable("organizations").set(patch).where("id", "=", id).execute();
  return findOrganization(db, id);
}
