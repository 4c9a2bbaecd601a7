import { dialectOf, type Executor } from "../store.ts";
import { CONTACT_COLUMNS, type ContactRow } from "./contacts.ts";

/**
 * Set-based statements for batches and imports: a few multi-row statements per
 * batch instead of a round trip per row. Rows go in slices so that one
 * statement stays under both drivers' parameter limits.
 */
const SLICE = 500;

/**
 * Every contact of the account holding one of these phones or business-scoped
 * user ids. On PostgreSQL the rows are locked (FOR UPDATE, in id order) until
 * the transaction ends: the batch writes whole rows back, so a concurrent
 * writer must not change them between this read and that write. SQLite runs
 * one transaction at a time and needs no lock.
 */
export async function findByIdentities(
  db: Executor,
  accountId: string,
  phones: string[],
  bsuids: string[],
): Promise<ContactRow[]> {
  const dialect = dialectOf(db);
  const out: ContactRow[] = [];
  for (let i = 0; i < Math.max(phones.length, bsuids.length); i += SLICE) {
    const p = phones.slice(i, i + SLICE);
    const b = bsuids.slice(i, i + SLICE);
    let query = db
      .selectFrom("contacts")
      .select(CONTACT_COLUMNS)
      .where("account_id", "=", accountId)
      .where((eb) =>
        eb.or([
          ...(p.length > 0 ? [eb("phone_number", "in", p)] : []),
          ...(b.length > 0 ? [eb("business_scoped_user_id", "in", b)] : []),
        ]),
      );
    if (dialect === "postgres") query = query.orderBy("id").forUpdate();
    out.push(...(await query.execute()));
  }
  return out;
}

/**
 * Writes the mutable columns of existing contacts, many rows per statement
 * (an INSERT … ON CONFLICT (id) DO UPDATE, which both dialects run as an update
 * of the row with that id).
 */
export async function updateContactRows(db: Executor, rows: ContactRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += SLICE) {
    await db
      .insertInto("contacts")
      .values(rows.slice(i, i + SLICE))
      .onConflict((oc) =>
        oc.column("id").doUpdateSet((eb) => ({
          phone_number: eb.ref("excluded.phone_number"),
          business_scoped_user_id: eb.ref("excluded.business_scoped_user_id"),
          parent_business_scoped_user_id: eb.ref("excluded.parent_business_scoped_user_id"),
          username: eb.ref("excluded.username"),
          profile_name: eb.ref("excluded.profile_name"),
          display_name: eb.ref("excluded.display_name"),
          email: eb.ref("excluded.email"),
          metadata: eb.ref("excluded.metadata"),
          search_text: eb.ref("excluded.search_text"),
          updated_at: eb.ref("excluded.updated_at"),
        })),
      )
      .execute();
  }
}
