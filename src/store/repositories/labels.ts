import { type Insertable, type Selectable, sql, type Updateable } from "kysely";
import type { LabelsTable } from "../schema.ts";
import type { Executor } from "../store.ts";

export type LabelRow = Selectable<LabelsTable>;

export async function insertLabel(db: Executor, row: Insertable<LabelsTable>): Promise<void> {
  await db.insertInto("labels").values(row).execute();
}

/** Inserts labels whose name is still free in the organisation; returns nothing (read them back by name). */
export async function insertLabelsIfAbsent(db: Executor, rows: Insertable<LabelsTable>[]): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insertInto("labels")
    .values(rows)
    .onConflict((oc) => oc.doNothing())
    .execute();
}

export async function findLabel(
  db: Executor,
  organizationId: string,
  id: string,
): Promise<LabelRow | undefined> {
  return db
    .selectFrom("labels")
    .selectAll()
    .where("organization_id", "=", organizationId)
    .where("id", "=", id)
    .executeTakeFirst();
}

export async function findLabelByName(
  db: Executor,
  organizationId: string,
  nameLower: string,
): Promise<LabelRow | undefined> {
  return db
    .selectFrom("labels")
    .selectAll()
    .where("organization_id", "=", organizationId)
    .where("name_lower", "=", nameLower)
    .executeTakeFirst();
}

export async function findLabelsByNames(
  db: Executor,
  organizationId: string,
  namesLower: string[],
): Promise<LabelRow[]> {
  if (namesLower.length === 0) return [];
  return db
    .selectFrom("labels")
    .selectAll()
    .where("organization_id", "=", organizationId)
    .where("name_lower", "in", namesLower)
    .execute();
}

/** Keyset page in `created_at desc, id desc` order. */
export async function listLabels(
  db: Executor,
  organizationId: string,
  after: { created_at: number; id: string } | undefined,
  limit: number,
): Promise<LabelRow[]> {
  let query = db.selectFrom("labels").selectAll().where("organization_id", "=", organizationId);
  if (after) {
    query = query.where((eb) =>
      eb(eb.refTuple("created_at", "id"), "<", eb.tuple(after.created_at, after.id)),
    );
  }
  return query.orderBy("created_at", "desc").orderBy("id", "desc").limit(limit).execute();
}

export async function updateLabel(db: Executor, id: string, patch: Updateable<LabelsTable>): Promise<void> {
  await db.updateTable("labels").set(patch).where("id", "=", id).execute();
}

export async function deleteLabel(db: Executor, organizationId: string, id: string): Promise<boolean> {
  const result = await db
    .deleteFrom("labels")
    .where("organization_id", "=", organizationId)
    .where("id", "=", id)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** Attaches one label to each contact that lacks it; returns the contacts it was attached to. */
export async function attachLabelTo(
  db: Executor,
  labelId: string,
  contactIds: string[],
  at: number,
): Promise<string[]> {
  if (contactIds.length === 0) return [];
  const rows = await db
    .insertInto("contact_labels")
    .values(contactIds.map((contact_id) => ({ contact_id, label_id: labelId, created_at: at })))
    .onConflict((oc) => oc.doNothing())
    .returning("contact_id")
    .execute();
  return rows.map((r) => r.contact_id);
}

/** Detaches one label from these contacts; returns the contacts that carried it. */
export async function detachLabelFrom(
  db: Executor,
  labelId: string,
  contactIds: string[],
): Promise<string[]> {
  if (contactIds.length === 0) return [];
  const rows = await db
    .deleteFrom("contact_labels")
    .where("label_id", "=", labelId)
    .where("contact_id", "in", contactIds)
    .returning("contact_id")
    .execute();
  return rows.map((r) => r.contact_id);
}

/** Label ids carried by each of these contacts. */
export async function labelIdsOf(db: Executor, contactIds: string[]): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  if (contactIds.length === 0) return out;
  const rows = await db
    .selectFrom("contact_labels")
    .select(["contact_id", "label_id"])
    .where("contact_id", "in", contactIds)
    .execute();
  for (const row of rows) {
    const set = out.get(row.contact_id) ?? new Set<string>();
    set.add(row.label_id);
    out.set(row.contact_id, set);
  }
  return out;
}

/** Inserts (contact, label) pairs; pairs already present are left alone. */
export async function insertContactLabels(
  db: Executor,
  pairs: Array<{ contact_id: string; label_id: string }>,
  at: number,
): Promise<void> {
  for (let i = 0; i < pairs.length; i += 1000) {
    await db
      .insertInto("contact_labels")
      .values(pairs.slice(i, i + 1000).map((p) => ({ ...p, created_at: at })))
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
}

/**
 * Marks contacts as changed at `at` (label changes count as changes for
 * `updated_after` syncs); `updated_at` always moves forward.
 */
export async function touchContacts(db: Executor, contactIds: string[], at: number): Promise<void> {
  if (contactIds.length === 0) return;
  await db
    .updateTable("contacts")
    .set({ updated_at: sql<number>`CASE WHEN updated_at < ${at} THEN ${at} ELSE updated_at + 1 END` })
    .where("id", "in", contactIds)
    .execute();
}

/** The contacts that carry a label. */
export async function contactsCarrying(db: Executor, labelId: string): Promise<string[]> {
  const rows = await db
    .selectFrom("contact_labels")
    .select("contact_id")
    .where("label_id", "=", labelId)
    .execute();
  return rows.map((r) => r.contact_id);
}

/** touchContacts for every contact carrying a label, in one statement (a label may be on many). */
export async function touchContactsCarrying(db: Executor, labelId: string, at: number): Promise<void> {
  await db
    .updateTable("contacts")
    .set({ updated_at: sql<number>`CASE WHEN updated_at < ${at} THEN ${at} ELSE updated_at + 1 END` })
    .where("id", "in", (eb) =>
      eb.selectFrom("contact_labels").select("contact_id").where("label_id", "=", labelId),
    )
    .execute();
}
