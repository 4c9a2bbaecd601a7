import { isDeepStrictEqual } from "node:util";
import { ApiError, notFound } from "../errors.ts";
import { newId } from "../ids.ts";
import * as contactsRepo from "../store/repositories/contacts.ts";
import * as repo from "../store/repositories/merges.ts";
import type { Executor } from "../store/store.ts";
import {
  type Metadata,
  metadataText,
  parseStoredMetadata,
  searchTextOf,
  validateMetadata,
} from "./contact-fields.ts";
import type { ContactView, Scope } from "./contacts.ts";
import { getContact } from "./contacts.ts";
import { emitEvents, updateEvents } from "./events.ts";

/**
 * Merging duplicate contacts (docs/merge.md). One survivor keeps its id; the
 * other contacts become tombstones that point at it (`merged_into`) and keep
 * their own columns and identities untouched, so that their ids, phones and
 * BSUIDs keep finding the person, and an undo gives them back exactly.
 */

export const MAX_MERGE_FROM = 10;
/** How long a merge can be undone. */
export const UNDO_WINDOW_MS = 30 * 24 * 60 * 60 * 1000;

/** Fields whose value a merge picks from one contact (`prefer` may name which). */
export const MERGE_FIELDS = [
  "display_name",
  "profile_name",
  "email",
  "username",
  "parent_business_scoped_user_id",
  "customer_id",
] as const;
export type MergeField = (typeof MERGE_FIELDS)[number];
/** `prefer` keys: the fields above and `metadata` (that contact's values win per key). */
export type PreferKey = MergeField | "metadata";
export const PREFER_KEYS: readonly PreferKey[] = [...MERGE_FIELDS, "metadata"];

export interface MergeCommand {
  survivorId: string;
  from: string[];
  prefer?: Partial<Record<PreferKey, string>> | undefined;
  /** The survivor's `updated_at` (ms) the caller saw, or per contact id. */
  expectedUpdatedAt?: number | Record<string, number> | undefined;
}

/** One field of the result: its value, which contact it comes from, whether the survivor's value changes. */
export interface FieldOutcome {
  field: MergeField | "marketing_opt_out" | "created_at";
  value: unknown;
  source: string;
  changed: boolean;
}

export interface MergePlan {
  survivor: repo.ContactState;
  merged: repo.ContactState[];
  /** The survivor's columns after the merge (only those that change). */
  set: Partial<contactsRepo.ContactRow>;
  fields: FieldOutcome[];
  metadata: { value: Metadata; keys_added: string[]; keys_changed: string[] };
  labels_added: string[];
  labels_total: number;
  /** Phones, BSUIDs and usernames of the merged contacts that now lead to the survivor. */
  identities_moved: number;
  refusals: ApiError[];
}

/** Syntax rules (400): at most 10, no repeats, `prefer` names a field and a contact of the merge. */
function checkCommand(cmd: MergeCommand): void {
  const fromParam = "from";
  if (cmd.from.length === 0) {
    throw new ApiError("missing_required_field", `${fromParam} must name at least one contact.`, {
      field: fromParam,
    });
  }
  if (cmd.from.length > MAX_MERGE_FROM) {
    throw new ApiError("invalid_field_value", `${fromParam} may name at most ${MAX_MERGE_FROM} contacts.`, {
      field: fromParam,
    });
  }
  if (new Set(cmd.from).size !== cmd.from.length) {
    throw new ApiError("invalid_field_value", `${fromParam} names a contact twice.`, { field: fromParam });
  }
  const members = new Set([cmd.survivorId, ...cmd.from]);
  for (const [key, id] of Object.entries(cmd.prefer ?? {})) {
    const param = `prefer.${key}`;
    if (!PREFER_KEYS.includes(key as PreferKey)) {
      throw new ApiError("invalid_field_value", `prefer may name only ${PREFER_KEYS.join(", ")}.`, {
        field: param,
      });
    }
    if (id !== undefined && !members.has(id)) {
      throw new ApiError("invalid_field_value", `${param} must be the survivor or one of ${fromParam}.`, {
        field: param,
      });
    }
  }
}

/**
 * Reads (and on PostgreSQL locks) every contact of the merge and works out
 * the result. Unknown contacts are 404; the rules a merge must meet are
 * collected as `refusals` (the preview lists them all, the merge throws the
 * first).
 */
export async function planMerge(scope: Scope, cmd: MergeCommand, at: number): Promise<MergePlan> {
  checkCommand(cmd);
  const fromParam = "from";
  const idParam = "id";
  const rows = await repo.lockContacts(scope.db, scope.organizationId, [cmd.survivorId, ...cmd.from]);
  const survivor = rows.get(cmd.survivorId);
  if (!survivor) throw notFound("contact", idParam);
  const merged: repo.ContactState[] = [];
  for (const id of cmd.from) {
    const row = rows.get(id);
    if (!row) throw new ApiError("resource_not_found", `No such contact: ${id}.`, { field: fromParam });
    merged.push(row);
  }
  const refusals: ApiError[] = [];
  if (cmd.from.includes(cmd.survivorId)) {
    refusals.push(
      new ApiError("merge_with_itself", "A contact cannot be merged into itself.", { field: fromParam }),
    );
  }
  if (survivor.merged_into !== null) {
    refusals.push(
      new ApiError(
        "contact_merged",
        `${survivor.id} was merged into ${survivor.merged_into}; merge into that.`,
        {
          field: idParam,
          extra: { contact_id: survivor.id, merged_into: survivor.merged_into },
        },
      ),
    );
  }
  for (const row of merged) {
    if (row.id === survivor.id) continue;
    if (row.merged_into !== null) {
      refusals.push(
        new ApiError("contact_merged", `${row.id} was already merged into ${row.merged_into}.`, {
          field: fromParam,
          extra: { contact_id: row.id, merged_into: row.merged_into },
        }),
      );
    } else if (await repo.hasUndoableMerge(scope.db, row.id, at)) {
      refusals.push(
        new ApiError(
          "merge_chain",
          `${row.id} is the survivor of a merge that can still be undone; merge the others into it instead.`,
          { field: fromParam, extra: { contact_id: row.id } },
        ),
      );
    }
  }
  checkExpected(cmd, [survivor, ...merged], refusals, "expected_updated_at");

  const others = merged.filter((row) => row.id !== survivor.id);
  const all = [survivor, ...others];
  const byId = new Map(all.map((row) => [row.id, row]));
  const set: Partial<contactsRepo.ContactRow> = {};
  const fields: FieldOutcome[] = [];
  for (const field of MERGE_FIELDS) {
    const preferred = cmd.prefer?.[field];
    const source = preferred
      ? byId.get(preferred)!
      : survivor[field] !== null
        ? survivor
        : (others.find((row) => row[field] !== null) ?? survivor);
    const value = source[field];
    const changed = value !== survivor[field];
    if (changed) set[field] = value;
    fields.push({ field, value, source: source.id, changed });
  }

  // Metadata: every key of every contact; the survivor wins per key, then the
  // contacts in `from` order, unless `prefer.metadata` names whose values win.
  const documents = all.map((row) => ({ id: row.id, doc: parseStoredMetadata(row.metadata) }));
  const order = [...documents.slice(1).reverse(), documents[0]!];
  const preferredDoc = cmd.prefer?.metadata;
  if (preferredDoc) {
    const index = order.findIndex((d) => d.id === preferredDoc);
    order.push(...order.splice(index, 1));
  }
  const metadata: Metadata = {};
  for (const { doc } of order) Object.assign(metadata, doc);
  const before = documents[0]!.doc;
  const keysAdded = Object.keys(metadata).filter((k) => !(k in before));
  const keysChanged = Object.keys(metadata).filter(
    (k) => k in before && !isDeepStrictEqual(before[k], metadata[k]),
  );
  try {
    validateMetadata(metadata, "metadata");
  } catch (error) {
    refusals.push(
      new ApiError(
        "merge_invalid_result",
        `The merged metadata would break the metadata rules: ${(error as Error).message}`,
        { field: "metadata" },
      ),
    );
  }
  const metadataTextAfter = metadataText(metadata);
  if (metadataTextAfter !== survivor.metadata) set.metadata = metadataTextAfter;

  // Opt-out: the most restrictive wins; an opted-out person stays opted out.
  const optedOut = all.filter((row) => row.marketing_opt_out === 1);
  if (optedOut.length > 0 && survivor.marketing_opt_out === 0) {
    const newest = optedOut.reduce((a, b) =>
      (b.marketing_opt_out_at ?? 0) > (a.marketing_opt_out_at ?? 0) ? b : a,
    );
    set.marketing_opt_out = 1;
    set.marketing_opt_out_at = newest.marketing_opt_out_at;
    fields.push({ field: "marketing_opt_out", value: true, source: newest.id, changed: true });
  } else {
    fields.push({
      field: "marketing_opt_out",
      value: survivor.marketing_opt_out === 1,
      source: survivor.id,
      changed: false,
    });
  }
  // The person has been known since the earliest of the records.
  const earliest = all.reduce((a, b) => (b.created_at < a.created_at ? b : a));
  if (earliest.created_at !== survivor.created_at) set.created_at = earliest.created_at;
  fields.push({
    field: "created_at",
    value: earliest.created_at,
    source: earliest.id,
    changed: earliest.created_at !== survivor.created_at,
  });

  const labels = await repo.labelsOf(
    scope.db,
    all.map((row) => row.id),
  );
  const survivorLabels = labels.get(survivor.id)!;
  const union = new Set(survivorLabels.keys());
  for (const row of others) for (const id of labels.get(row.id)!.keys()) union.add(id);
  const labelsAdded = [...union].filter((id) => !survivorLabels.has(id)).sort();
  const identitiesMoved = others.reduce(
    (n, row) =>
      n + [row.phone_number, row.business_scoped_user_id, row.username].filter((v) => v !== null).length,
    0,
  );
  return {
    survivor,
    merged: others,
    set,
    fields,
    metadata: { value: metadata, keys_added: keysAdded.sort(), keys_changed: keysChanged.sort() },
    labels_added: labelsAdded,
    labels_total: union.size,
    identities_moved: identitiesMoved,
    refusals,
  };
}

function checkExpected(
  cmd: MergeCommand,
  rows: repo.ContactState[],
  refusals: ApiError[],
  param: string,
): void {
  const expected = cmd.expectedUpdatedAt;
  if (expected === undefined) return;
  const wanted: Record<string, number> =
    typeof expected === "number" ? { [cmd.survivorId]: expected } : expected;
  for (const [id, ms] of Object.entries(wanted)) {
    const row = rows.find((r) => r.id === id);
    if (!row) {
      throw new ApiError("invalid_field_value", `${param} names ${id}, which is not part of this merge.`, {
        field: param,
      });
    }
    if (row.updated_at !== ms) {
      refusals.push(
        new ApiError(
          "contact_changed",
          `${id} changed since ${new Date(ms).toISOString()}; review it again.`,
          {
            field: param,
            extra: { contact_id: id, updated_at: new Date(row.updated_at).toISOString() },
          },
        ),
      );
    }
  }
}

export interface MergeResult {
  merge: repo.MergeRow;
  contact: ContactView;
  plan: MergePlan;
}

/**
 * Merges `cmd.from` into `cmd.survivorId`, in the caller's transaction
 * (`scope.db`). Throws the first refusal; writes nothing when it throws.
 */
export async function mergeContacts(scope: Scope, cmd: MergeCommand, at: number): Promise<MergeResult> {
  const plan = await planMerge(scope, cmd, at);
  if (plan.refusals.length > 0) throw plan.refusals[0]!;
  const { survivor, merged } = plan;
  const mergedIds = merged.map((row) => row.id);
  const set = { ...plan.set };
  const next = { ...survivor, ...set };
  const searchText = searchTextOf(next);
  if (searchText !== survivor.search_text) set.search_text = searchText;
  set.updated_at = Math.max(at, survivor.updated_at + 1);
  const mergeRow: repo.MergeRow = {
    id: newId("mrg"),
    organization_id: scope.organizationId,
    survivor_id: survivor.id,
    merged_ids: JSON.stringify(mergedIds),
    prefer: JSON.stringify(cmd.prefer ?? {}),
    survivor_before: JSON.stringify(pick(survivor, Object.keys(set))),
    survivor_after: JSON.stringify(set),
    labels_added: JSON.stringify(plan.labels_added),
    created_at: at,
    undo_until: at + UNDO_WINDOW_MS,
    undone_at: null,
  };
  await repo.insertMerge(scope.db, mergeRow);
  // Tombstones first: the survivor's new values must not meet theirs in a unique index.
  await repo.repointTombstones(scope.db, mergedIds, survivor.id);
  await repo.markMerged(scope.db, mergedIds, survivor.id, mergeRow.id);
  await contactsRepo.updateContactRow(scope.db, scope.organizationId, survivor.id, set);
  await contactsRepo.attachLabels(scope.db, survivor.id, plan.labels_added, at);
  await recordMergeEvent(scope, {
    type: "contact.merged",
    survivorId: survivor.id,
    mergedIds,
    mergeId: mergeRow.id,
    at,
  });
  const contact = await getContact(scope, survivor.id);
  return { merge: mergeRow, contact, plan };
}

/**
 * The one place a merge's event is recorded: `contact.merged` (or
 * `contact.unmerged` by an undo) with the survivor's state and the ids merged
 * away (or restored), written to the outbox in the merge's own transaction.
 */
async function recordMergeEvent(
  scope: Scope,
  event: {
    type: "contact.merged" | "contact.unmerged";
    survivorId: string;
    mergedIds: string[];
    mergeId: string;
    at: number;
  },
): Promise<void> {
  await emitEvents(scope, [
    {
      type: event.type,
      contactId: event.survivorId,
      data: {
        merge_id: event.mergeId,
        [event.type === "contact.merged" ? "merged_ids" : "restored_ids"]: event.mergedIds,
      },
    },
  ]);
}

function pick<T extends object>(row: T, keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) out[key] = (row as Record<string, unknown>)[key];
  return out;
}

export interface UndoResult {
  merge: repo.MergeRow;
  contact: ContactView;
  restored: string[];
  /** Survivor fields kept as they are because they changed after the merge. */
  kept: string[];
}

/**
 * Undoes a merge within UNDO_WINDOW_MS: the merged contacts return exactly as
 * they were (their rows were never changed; `updated_at` moves so that syncs
 * see them again); on the survivor, each field the merge set goes back to
 * its value before, unless it changed since (then the later change is kept),
 * and the labels the merge attached are detached.
 */
export async function undoMerge(
  scope: Scope,
  mergeId: string,
  at: number,
  param = "merge_id",
): Promise<UndoResult> {
  const merge = await repo.findMerge(scope.db, scope.organizationId, mergeId);
  if (!merge) throw notFound("merge", param);
  if (merge.undone_at !== null) {
    throw new ApiError("merge_already_undone", "This merge was undone already.", {
      field: param,
      extra: { undone_at: new Date(merge.undone_at).toISOString() },
    });
  }
  if (at >= merge.undo_until) {
    throw new ApiError("merge_undo_expired", "A merge can be undone for 30 days only.", {
      field: param,
      extra: { undo_until: new Date(merge.undo_until).toISOString() },
    });
  }
  const mergedIds = JSON.parse(merge.merged_ids) as string[];
  const rows = await repo.lockContacts(scope.db, scope.organizationId, [merge.survivor_id, ...mergedIds]);
  const survivor = rows.get(merge.survivor_id);
  if (!survivor) throw notFound("merge", param);
  const before = JSON.parse(merge.survivor_before) as Record<string, unknown>;
  const after = JSON.parse(merge.survivor_after) as Record<string, unknown>;
  const current = survivor as unknown as Record<string, unknown>;
  const set: Record<string, unknown> = {};
  const kept: string[] = [];
  for (const field of [...MERGE_FIELDS, "created_at"]) {
    if (!(field in after)) continue;
    if (current[field] === after[field]) set[field] = before[field];
    else kept.push(field);
  }
  // The opt-out moves as a pair; an opt-out recorded since the merge is kept.
  if ("marketing_opt_out" in after) {
    if (
      survivor.marketing_opt_out === after.marketing_opt_out &&
      survivor.marketing_opt_out_at === (after.marketing_opt_out_at ?? null)
    ) {
      set.marketing_opt_out = before.marketing_opt_out;
      set.marketing_opt_out_at = before.marketing_opt_out_at;
    } else kept.push("marketing_opt_out");
  }
  if ("metadata" in after) {
    const b = parseStoredMetadata(before.metadata as string);
    const a = parseStoredMetadata(after.metadata as string);
    const c = parseStoredMetadata(survivor.metadata);
    let keptKey = false;
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (isDeepStrictEqual(a[key], b[key])) continue;
      if (!isDeepStrictEqual(c[key], a[key])) {
        keptKey = true;
        continue;
      }
      if (key in b) c[key] = b[key]!;
      else delete c[key];
    }
    if (keptKey) kept.push("metadata");
    const text = metadataText(c);
    if (text !== survivor.metadata) set.metadata = text;
  }
  const next = { ...survivor, ...set } as contactsRepo.ContactRow;
  const searchText = searchTextOf(next);
  if (searchText !== survivor.search_text) set.search_text = searchText;
  set.updated_at = Math.max(at, survivor.updated_at + 1);

  await repo.markUndone(scope.db, merge.id, at);
  const restored = await repo.restoreMerged(scope.db, merge.id, at);
  await contactsRepo.updateContactRow(scope.db, scope.organizationId, survivor.id, set);
  await repo.detachLabelsAttachedAt(
    scope.db,
    survivor.id,
    JSON.parse(merge.labels_added) as string[],
    merge.created_at,
  );
  // An opt-out the survivor received after the merge may have come from any
  // of the numbers: every restored contact keeps it (the safe side).
  const optedOut: string[] = [];
  if (kept.includes("marketing_opt_out") && survivor.marketing_opt_out === 1) {
    for (const id of restored) {
      const row = rows.get(id);
      if (row && row.marketing_opt_out === 0) {
        await contactsRepo.updateContactRow(scope.db, scope.organizationId, id, {
          marketing_opt_out: 1,
          marketing_opt_out_at: survivor.marketing_opt_out_at,
        });
        optedOut.push(id);
      }
    }
  }
  await recordMergeEvent(scope, {
    type: "contact.unmerged",
    survivorId: survivor.id,
    mergedIds: restored,
    mergeId: merge.id,
    at,
  });
  // A restored contact that keeps the survivor's later opt-out changed: it is told as such.
  await emitEvents(
    scope,
    optedOut.flatMap((id) => updateEvents(id, ["marketing_opt_out"], true)),
  );
  const contact = await getContact(scope, survivor.id);
  return { merge: { ...merge, undone_at: at }, contact, restored, kept };
}

/** The latest merge a contact survived that can still be undone (for `POST …/unmerge`). */
export async function latestUndoableMergeId(scope: Scope, contactId: string, at: number): Promise<string> {
  const contact = await getContact(scope, contactId);
  const rows = await repo.listMerges(scope.db, contact.id, undefined, 100);
  const open = rows.find((row) => row.undone_at === null && row.undo_until > at);
  if (!open) {
    throw new ApiError("no_undoable_merge", "This contact survived no merge that can still be undone.", {
      field: "id",
    });
  }
  return open.id;
}

/** A candidate pair with the reasons it was found (computed from the two contacts as they are now). */
export interface DuplicatePair {
  id: string;
  detected_at: number;
  reasons: DuplicateReason[];
  contacts: [ContactView, ContactView];
}

export type DuplicateReason =
  | "same_email"
  | "same_phone_other_account"
  | "same_business_scoped_user_id"
  | "same_parent_business_scoped_user_id"
  | "same_name_similar_phone";

export function reasonsOf(a: contactsRepo.ContactRow, b: contactsRepo.ContactRow): DuplicateReason[] {
  const out: DuplicateReason[] = [];
  if (a.email !== null && b.email !== null && a.email.toLowerCase() === b.email.toLowerCase())
    out.push("same_email");
  if (a.phone_number !== null && a.phone_number === b.phone_number) out.push("same_phone_other_account");
  if (a.business_scoped_user_id !== null && a.business_scoped_user_id === b.business_scoped_user_id) {
    out.push("same_business_scoped_user_id");
  }
  if (
    a.parent_business_scoped_user_id !== null &&
    a.parent_business_scoped_user_id === b.parent_business_scoped_user_id
  ) {
    out.push("same_parent_business_scoped_user_id");
  }
  const nameA = a.display_name ?? a.profile_name;
  const nameB = b.display_name ?? b.profile_name;
  if (
    nameA !== null &&
    nameB !== null &&
    a.phone_number !== null &&
    b.phone_number !== null &&
    a.phone_number !== b.phone_number &&
    nameA.toLowerCase() === nameB.toLowerCase() &&
    a.phone_number.slice(-7) === b.phone_number.slice(-7)
  ) {
    out.push("same_name_similar_phone");
  }
  return out;
}

/**
 * A page (`limit` + 1 rows, for has_more) of the candidate pairs, newest
 * first: read from `duplicate_pairs`, which triggers keep current on every
 * write (docs/merge.md), then the two contacts of each pair.
 */
export async function listDuplicates(
  scope: Scope,
  accountId: string | undefined,
  after: contactsRepo.Keyset | undefined,
  limit: number,
): Promise<Array<DuplicatePair & { created_at: number }>> {
  const pairs = await repo.listDuplicatePairs(scope.db, scope.organizationId, accountId, after, limit);
  const ids = [...new Set(pairs.flatMap((p) => [p.contact_a, p.contact_b]))];
  const views = new Map<string, ContactView>();
  for (const id of ids) {
    const view = await contactsRepo.findContactView(scope.db, scope.organizationId, id);
    if (view) views.set(id, view);
  }
  const out: Array<DuplicatePair & { created_at: number }> = [];
  for (const pair of pairs) {
    const a = views.get(pair.contact_a);
    const b = views.get(pair.contact_b);
    if (!a || !b) continue;
    out.push({
      id: pair.id,
      detected_at: pair.detected_at,
      created_at: pair.detected_at,
      reasons: reasonsOf(a, b),
      contacts: [a, b],
    });
  }
  return out;
}

/** The merges a contact (or the survivor of a merged-away id) survived, newest first. */
export async function listMergesOf(
  scope: Scope,
  contactId: string,
  after: contactsRepo.Keyset | undefined,
  limit: number,
): Promise<{ contact: ContactView; merges: repo.MergeRow[] }> {
  const contact = await getContact(scope, contactId);
  return { contact, merges: await repo.listMerges(scope.db, contact.id, after, limit) };
}

/** The contacts merged into a survivor: its secondary identities. */
export async function mergedIdentitiesOf(db: Executor, survivorId: string): Promise<repo.ContactState[]> {
  return repo.tombstonesOf(db, survivorId);
}
