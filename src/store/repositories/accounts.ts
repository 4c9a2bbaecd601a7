import type { Insertable, Selectable, Updateable } from "kysely";
import type { AccountStatus, AccountsTable } from "../schema.ts";
import type { Executor } from "../store.ts";

export type AccountRow = Selectable<AccountsTable>;

export async function insertAccount(db: Executor, row: Insertable<AccountsTable>): Promise<void> {
  await db.insertInto("accounts").values(row).execute();
}

export async function findAccount(db: Executor, id: string): Promise<AccountRow | undefined> {
  return db.selectFrom("accounts").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function findAccountByPhoneNumberId(
  db: Executor,
  phoneNumberId: string,
): Promise<AccountRow | undefined> {
  return db
    .selectFrom("accounts")
    .selectAll()
    .where("phone_number_id", "=", phoneNumberId)
    .executeTakeFirst();
}

/** Every account of an organisation, oldest first (organisations have a handful). */
export async function listAccounts(
  db: Executor,
  organizationId: string,
  status?: AccountStatus,
): Promise<AccountRow[]> {
  let query = db.selectFrom("accounts").selectAll().where("organization_id", "=", organizationId);
  if (status) query = query.where("status", "=", status);
  return query.orderBy("created_at", "asc").orderBy("id", "asc").execute();
}

export async function updateAccount(
  db: Executor,
  id: string,
  patch: Updateable<AccountsTable>,
): Promise<AccountRow | undefined> {
  await db.updateTable("accounts").set(patch).where("id", "=", id).execute();
  return findAccount(db, id);
}

/** The first `limit` accounts of the installation, oldest first (the CLI picks the only one). */
export async function listAllAccounts(db: Executor, limit: number): Promise<AccountRow[]> {
  return db
    .selectFrom("accounts")
    .selectAll()
    .orderBy("created_at", "asc")
    .orderBy("id", "asc")
    .limit(limit)
    .execute();
}
