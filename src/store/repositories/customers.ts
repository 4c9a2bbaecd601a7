import type { Insertable, Selectable, Updateable } from "kysely";
import type { CustomersTable } from "../schema.ts";
import type { Executor } from "../store.ts";
import type { Bound } from "./contacts.ts";

export type CustomerRow = Selectable<CustomersTable>;

/** Inserts unless the external id is taken; true when the row was written. */
export async function insertCustomerIfAbsent(
  db: Executor,
  row: Insertable<CustomersTable>,
): Promise<boolean> {
  const result = await db
    .insertInto("customers")
    .values(row)
    .onConflict((oc) => oc.doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export async function findCustomer(
  db: Executor,
  organizationId: string,
  id: string,
): Promise<CustomerRow | undefined> {
  return db
    .selectFrom("customers")
    .selectAll()
    .where("organization_id", "=", organizationId)
    .where("id", "=", id)
    .executeTakeFirst();
}

export async function findCustomerByExternalId(
  db: Executor,
  organizationId: string,
  externalId: string,
): Promise<CustomerRow | undefined> {
  return db
    .selectFrom("customers")
    .selectAll()
    .where("organization_id", "=", organizationId)
    .where("external_customer_id", "=", externalId)
    .executeTakeFirst();
}

export async function updateCustomerRow(
  db: Executor,
  id: string,
  patch: Updateable<CustomersTable>,
): Promise<void> {
  await db.updateTable("customers").set(patch).where("id", "=", id).execute();
}

export async function deleteCustomerRow(db: Executor, organizationId: string, id: string): Promise<boolean> {
  const result = await db
    .deleteFrom("customers")
    .where("organization_id", "=", organizationId)
    .where("id", "=", id)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export interface CustomerFilters {
  organizationId: string;
  externalCustomerId?: string | undefined;
}

/**
 * A page of customers in `created_at desc, id desc` order, after or before a
 * position (`before` reads ascending and returns the rows reversed).
 */
export async function listCustomerRows(
  db: Executor,
  filters: CustomerFilters,
  bound: Bound,
  limit: number,
): Promise<CustomerRow[]> {
  const order = bound.before ? "asc" : "desc";
  let query = db.selectFrom("customers").selectAll().where("organization_id", "=", filters.organizationId);
  if (filters.externalCustomerId !== undefined) {
    query = query.where("external_customer_id", "=", filters.externalCustomerId);
  }
  const { after, before } = bound;
  if (after)
    query = query.where((eb) =>
      eb(eb.refTuple("created_at", "id"), "<", eb.tuple(after.created_at, after.id)),
    );
  if (before)
    query = query.where((eb) =>
      eb(eb.refTuple("created_at", "id"), ">", eb.tuple(before.created_at, before.id)),
    );
  const rows = await query.orderBy("created_at", order).orderBy("id", order).limit(limit).execute();
  if (before) rows.reverse();
  return rows;
}

/** Whether any customer matching the filters lies beyond the bound. */
export async function customersExist(db: Executor, filters: CustomerFilters, bound: Bound): Promise<boolean> {
  const rows = await listCustomerRows(db, filters, bound, 1);
  return rows.length > 0;
}
