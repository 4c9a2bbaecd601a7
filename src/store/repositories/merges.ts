import { type Insertable, type Selectable, sql } from "kysely";
import type { DuplicatePairsTable, MergesTable } from "../schema.ts";
import { dialectOf, type Executor } from "../store.ts";
import { CONTACT_COLUMNS, type ContactRow, type Keyset, organizationOfIds } from "./contacts.ts";

export type MergeRow = Selectable<MergesTable>;
export type DuplicatePairRow = Selectable<DuplicatePairsTable>;

/** A contact's columns and whether it is a tombstone (merged away). */
export interface ContactState extends ContactRow {
  merged_into: string | null;
  merge_id: string | null;
}

const STATE_COLUMNS = [...CONTACT_COLUMNS, "merged_into", "merge_id"] as const;

/**
 * The organisation's contacts with these ids (live or merged away). On
 * PostgreSQL they are locked (FOR UPDATE, in id order, so two merges over
 * overlapping sets wait for each other instead of deadlocking); a concurrent
 * merge of one of them then sees the other's committed result. SQLite runs
 * one write transaction at a time.
 */
export async function lockContacts(
  db: Executor,
  organizationId: string,
  ids: string[],
): Promise<Map<string, ContactState>> {
  const dialect = dialectOf(db);
  if (ids.length === 0) return new Map();
  let query = db
    .selectFrom("contacts")
    .select(STATE_COLUMNS)
    .where(organizationOfIds(db), "=", organizationId)
    .where("id", "in", ids)
    .orderBy("id");
  if (dialect === "postgres") query = query.forUpdate();
  const rows = (await query.execute()) as ContactState[];
  return new Map(rows.map((row) => [row.id, row]));
}

/** The survivor a merged-away contact of the organisation points at (undefined: not a tombstone, or unknown). */
export async function survivorIdOf(
  db: Executor,
  organizationId: string,
  id: string,
  accountId?: string,
): Promise<string | undefined> {
  let query = db
    .selectFrom("contacts")
    .select("merged_into")
    .where("id", "=", id)
    .where("organization_id", "=", organizationId);
  if (accountId !== undefined) query = query.where("account_id", "=", accountId);
  const row = await query.executeTakeFirst();
  return row?.merged_into ?? undefined;
}

/** The contacts merged into this one (its secondary identities). */
export async function tombstonesOf(db: Executor, survivorId: string): Promise<ContactState[]> {
  return (await db
    .selectFrom("contacts")
    .select(STATE_COLUMNS)
    .where("merged_into", "=", survivorId)
    .orderBy("id")
    .execute()) as ContactState[];
}

/** Label ids per contact, with when each was attached. */
export async function labelsOf(
  db: Executor,
  contactIds: string[],
): Promise<Map<string, Map<string, number>>> {
  const out = new Map<string, Map<string, number>>(contactIds.map((id) => [id, new Map()]));
  if (contactIds.length === 0) return out;
  const rows = await db
    .selectFrom("contact_labels")
    .select(["contact_id", "label_id", "created_at"])
    .where("contact_id", "in", contactIds)
    .execute();
  for (const row of rows) out.get(row.contact_id)?.set(row.label_id, row.created_at);
  return out;
}

/** Removes labels from a contact, only those attached at `attachedAt` (by the merge, not since). */
export async function detachLabelsAttachedAt(
  db: Executor,
  contactId: string,
  labelIds: string[],
  attachedAt: number,
): Promise<void> {
  if (labelIds.length === 0) return;
  await db
    .deleteFrom("contact_labels")
    .where("contact_id", "=", contactId)
    .where("label_id", "in", labelIds)
    .where("created_at", "=", attachedAt)
    .execute();
}

/** Whether the contact is the survivor of a merge that can still be undone. */
export async function hasUndoableMerge(db: Executor, survivorId: string, at: number): Promise<boolean> {
  const row = await db
    .selectFrom("merges")
    .select("id")
    .where("survivor_id", "=", survivorId)
    .where("undone_at", "is", null)
    .where("undo_until", ">", at)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

export async function insertMerge(db: Executor, row: Insertable<MergesTable>): Promise<void> {
  await db.insertInto("merges").values(row).execute();
}

export async function findMerge(
  db: Executor,
  organizationId: string,
  id: string,
): Promise<MergeRow | undefined> {
  const dialect = dialectOf(db);
  let query = db
    .selectFrom("merges")
    .selectAll()
    .where("id", "=", id)
    .where("organization_id", "=", organizationId);
  if (dialect === "postgres") query = query.forUpdate();
  return query.executeTakeFirst();
}

export async function markUndone(db: Executor, id: string, at: number): Promise<void> {
  await db.updateTable("merges").set({ undone_at: at }).where("id", "=", id).execute();
}

/** The merges a contact survived, newest first, after a keyset position. */
export async function listMerges(
  db: Executor,
  survivorId: string,
  after: Keyset | undefined,
  limit: number,
): Promise<MergeRow[]> {
  let query = db.selectFrom("merges").selectAll().where("survivor_id", "=", survivorId);
  if (after) {
    query = query.where((eb) =>
      eb(eb.tuple(eb.ref("created_at"), eb.ref("id")), "<", eb.tuple(after.created_at, after.id)),
    );
  }
  return query.orderBy("created_at", "desc").orderBy("id", "desc").limit(limit).execute();
}

/** Makes contacts tombstones of `survivorId`; their columns are left exactly as they are. */
export async function markMerged(
  db: Executor,
  ids: string[],
  survivorId: string,
  mergeId: string,
): Promise<void> {
  await db
    .updateTable("contacts")
    .set({ merged_into: survivorId, merge_id: mergeId })
    .where("id", "in", ids)
    .execute();
}

/**
 * Tombstones of contacts now merged away point at the new survivor directly
 * (only merges that can no longer be undone leave such tombstones: a
 * survivor of an undoable merge is never merged away).
 */
export async function repointTombstones(db: Executor, fromIds: string[], survivorId: string): Promise<void> {
  await db
    .updateTable("contacts")
    .set({ merged_into: survivorId })
    .where("merged_into", "in", fromIds)
    .execute();
}

/** The tombstones of one merge become contacts again; `updated_at` moves so that syncs see them return. */
export async function restoreMerged(db: Executor, mergeId: string, at: number): Promise<string[]> {
  const rows = await db.selectFrom("contacts").select("id").where("merge_id", "=", mergeId).execute();
  if (rows.length === 0) return [];
  await db
    .updateTable("contacts")
    .set((eb) => ({
      merged_into: null,
      merge_id: null,
      updated_at: sql<number>`CASE WHEN ${eb.ref("updated_at")} >= ${at} THEN ${eb.ref("updated_at")} + 1 ELSE ${at} END`,
    }))
    .where("merge_id", "=", mergeId)
    .execute();
  return rows.map((r) => r.id);
}

/**
 * A page of candidate pairs, newest first (detected_at desc, id desc), of
 * the organisation or of pairs touching one account. Each branch walks its
 * own index from the position; the account form reads both sides' indexes.
 */
export async function listDuplicatePairs(
  db: Executor,
  organizationId: string,
  accountId: string | undefined,
  after: Keyset | undefined,
  limit: number,
): Promise<DuplicatePairRow[]> {
  const branch = (column: "organization_id" | "account_a" | "account_b", value: string) => {
    let query = db.selectFrom("duplicate_pairs").selectAll().where(column, "=", value);
    if (column !== "organization_id") query = query.where("organization_id", "=", organizationId);
    if (after) {
      query = query.where((eb) =>
        eb(eb.tuple(eb.ref("detected_at"), eb.ref("id")), "<", eb.tuple(after.created_at, after.id)),
      );
    }
    return query.orderBy("detected_at", "desc").orderBy("id", "desc").limit(limit);
  };
  if (accountId === undefined) return branch("organization_id", organizationId).execute();
  const [a, b] = await Promise.all([
    branch("account_a", accountId).execute(),
    branch("account_b", accountId).execute(),
  ]);
  const seen = new Map<string, DuplicatePairRow>();
  for (const row of [...a, ...b]) seen.set(row.id, row);
  return [...seen.values()]
    .sort((x, y) => y.detected_at - x.detected_at || (x.id < y.id ? 1 : x.id > y.id ? -1 : 0))
    .slice(0, limit);
}

/** The contacts (live ones) with these ids, as rows. */
export async function contactRows(db: Executor, ids: string[]): Promise<Map<string, ContactRow>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .selectFrom("contacts")
    .select(CONTACT_COLUMNS)
    .where("id", "in", ids)
    .where("merged_into", "is", null)
    .execute();
  return new Map(rows.map((r) => [r.id, r as ContactRow]));
}

/** Of these contacts, the merged-away ones and their survivors. */
export async function survivorsOf(
  db: Executor,
  organizationId: string,
  ids: string[],
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await db
      .selectFrom("contacts")
      .select(["id", "merged_into"])
      .where(organizationOfIds(db), "=", organizationId)
      .where("id", "in", ids.slice(i, i + 500))
      .where("merged_into", "is not", null)
      .execute();
    for (const row of rows) out.set(row.id, row.merged_into!);
  }
  return out;
}
