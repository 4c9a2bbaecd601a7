import type { Selectable } from "kysely";
import type { ContactIdentityChangesTable } from "../schema.ts";
import type { Executor } from "../store.ts";

export type IdentityChangeRow = Selectable<ContactIdentityChangesTable>;

export async function insertIdentityChange(db: Executor, row: IdentityChangeRow): Promise<void> {
  await db.insertInto("contact_identity_changes").values(row).execute();
}

/** A contact's identity changes, newest first (keyset on created_at, id). */
export async function listIdentityChanges(
  db: Executor,
  contactId: string,
  after: { created_at: number; id: string } | undefined,
  limit: number,
): Promise<IdentityChangeRow[]> {
  let query = db.selectFrom("contact_identity_changes").selectAll().where("contact_id", "=", contactId);
  if (after) {
    query = query.where((eb) =>
      eb(eb.refTuple("created_at", "id"), "<", eb.tuple(after.created_at, after.id)),
    );
  }
  return query.orderBy("created_at", "desc").orderBy("id", "desc").limit(limit).execute();
}
