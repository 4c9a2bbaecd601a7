import { ApiError, isApiError } from "../errors.ts";
import type { AccountRow } from "../store/repositories/accounts.ts";
import { insertContactRows } from "../store/repositories/bulk-insert.ts";
import * as batchRepo from "../store/repositories/contact-batch.ts";
import type { ContactRow } from "../store/repositories/contacts.ts";
import * as contactsRepo from "../store/repositories/contacts.ts";
import * as labelsRepo from "../store/repositories/labels.ts";
import { survivorsOf } from "../store/repositories/merges.ts";
import type { ContactSource } from "../store/schema.ts";
import { now } from "./clock.ts";
import {
  buildRow,
  type ContactInput,
  diffContact,
  identityTaken,
  normalizeInput,
  noSuchLabel,
  requireIdentity,
  type Scope,
} from "./contacts.ts";
import { type EventInput, emitEvents, updateEvents } from "./events.ts";

export const BATCH_MAX = 1000;
export type BatchMode = "create" | "upsert";

/** One input of a batch: a contact input, or an error found while reading it (wrong types, bad CSV row). */
export type BatchItem =
  | {
      input: ContactInput;
      /** The input already passed `normalizeInput` and `requireIdentity` (an import's parser thread). */
      normalized?: boolean;
    }
  | { error: ApiError };

export interface BatchResult {
  status: "created" | "updated" | "unchanged" | "error";
  id?: string;
  error?: ApiError;
}

export interface BatchOptions {
  mode: BatchMode;
  source: ContactSource;
  /**
   * Of these existing contacts, the ones created earlier by the same job (an
   * import): in mode create, a later row of the same file with their identity
   * merges like upsert instead of failing with contact_exists.
   */
  ownContacts?: (ids: string[]) => Promise<Set<string>>;
}

/** A contact as this batch sees it: loaded from the store or created by an earlier item. */
interface Entry {
  row: ContactRow;
  isNew: boolean;
  rowChanged: boolean;
  labelsBefore: Set<string>;
  labels: Set<string>;
  /** Fields changed by the batch's items (for contact.updated). */
  changed: Set<string>;
}

function phoneKey(phone: string): string {
  return `p:${phone}`;
}
function bsuidKey(bsuid: string): string {
  return `b:${bsuid}`;
}

/**
 * Creates or upserts many contacts of one account in the caller's transaction,
 * with a handful of multi-row statements however many items there are.
 *
 * Items are decided in input order against the store and against the items
 * before them, with the same rules as single writes (`normalizeInput`,
 * `buildRow`, `diffContact`): upsert matches on phone first, then on
 * business-scoped user id, and merges like PATCH; labels given are attached
 * (never detached). Two items of one batch with the same identity resolve like
 * upsert in both modes: the first creates, the later ones merge into it. In
 * mode create an identity already stored is `contact_exists`. One bad item is
 * an error result; it never fails the others.
 */
export async function writeContactBatch(
  scope: Scope,
  account: AccountRow,
  items: BatchItem[],
  options: BatchOptions,
  depth = 0,
): Promise<BatchResult[]> {
  const at = now();
  const results: BatchResult[] = new Array(items.length);
  const prepared: Array<{ index: number; input: ContactInput }> = [];
  items.forEach((item, index) => {
    if ("error" in item) {
      results[index] = { status: "error", error: item.error };
      return;
    }
    try {
      const input = item.normalized ? item.input : normalizeInput(item.input, account.default_country);
      if (!item.normalized) requireIdentity(input);
      prepared.push({ index, input });
    } catch (error) {
      if (!isApiError(error)) throw error;
      results[index] = { status: "error", error };
    }
  });

  // Labels: one query for every id the batch names.
  const labelIds = [...new Set(prepared.flatMap((p) => p.input.label_ids ?? []))];
  const knownLabels = await contactsRepo.existingLabelIds(scope.db, scope.organizationId, labelIds);
  // Existing contacts: one query for every identity the batch names.
  const phones = [...new Set(prepared.flatMap((p) => (p.input.phone_number ? [p.input.phone_number] : [])))];
  const bsuids = [
    ...new Set(
      prepared.flatMap((p) => (p.input.business_scoped_user_id ? [p.input.business_scoped_user_id] : [])),
    ),
  ];
  const stored = await batchRepo.findByIdentities(scope.db, account.id, phones, bsuids);
  const storedLabels = await labelsRepo.labelIdsOf(
    scope.db,
    stored.map((r) => r.id),
  );
  // Identities of merged-away contacts (docs/merge.md): a row naming one is refused, pointing at the survivor.
  const merged =
    stored.length === 0
      ? new Map<string, string>()
      : await survivorsOf(
          scope.db,
          scope.organizationId,
          stored.map((r) => r.id),
        );
  const own =
    options.mode === "create" && options.ownContacts && stored.length > 0
      ? await options.ownContacts(stored.map((r) => r.id))
      : new Set<string>();

  const byKey = new Map<string, Entry>();
  const entries: Entry[] = [];
  const register = (entry: Entry) => {
    if (entry.row.phone_number) byKey.set(phoneKey(entry.row.phone_number), entry);
    if (entry.row.business_scoped_user_id) byKey.set(bsuidKey(entry.row.business_scoped_user_id), entry);
  };
  const unregister = (entry: Entry) => {
    for (const key of [
      entry.row.phone_number && phoneKey(entry.row.phone_number),
      entry.row.business_scoped_user_id && bsuidKey(entry.row.business_scoped_user_id),
    ]) {
      if (key && byKey.get(key) === entry) byKey.delete(key);
    }
  };
  for (const row of stored) {
    const labels = storedLabels.get(row.id) ?? new Set<string>();
    const entry: Entry = {
      row,
      isNew: false,
      rowChanged: false,
      labelsBefore: labels,
      labels: new Set(labels),
      changed: new Set(),
    };
    entries.push(entry);
    register(entry);
  }
  /** Which entry each prepared item ended on, to redo items whose insert lost a race. */
  const touched = new Map<number, Entry>();

  for (const { index, input } of prepared) {
    const missingLabel = (input.label_ids ?? []).find((id) => !knownLabels.has(id));
    if (missingLabel) {
      results[index] = { status: "error", error: noSuchLabel(missingLabel) };
      continue;
    }
    const target =
      (input.phone_number ? byKey.get(phoneKey(input.phone_number)) : undefined) ??
      (input.business_scoped_user_id ? byKey.get(bsuidKey(input.business_scoped_user_id)) : undefined);
    if (!target) {
      const row = buildRow(scope.organizationId, account.id, input, options.source, at);
      const entry: Entry = {
        row,
        isNew: true,
        rowChanged: true,
        labelsBefore: new Set(),
        labels: new Set(input.label_ids ?? []),
        changed: new Set(),
      };
      entries.push(entry);
      register(entry);
      touched.set(index, entry);
      results[index] = { status: "created", id: row.id };
      continue;
    }
    const survivorId = target.isNew ? undefined : merged.get(target.row.id);
    if (survivorId !== undefined) {
      results[index] = {
        status: "error",
        error: new ApiError(
          "contact_merged",
          `This identity belongs to a contact merged into ${survivorId}.`,
          {
            param: input.phone_number ? "phone_number" : "business_scoped_user_id",
            extra: { contact_id: target.row.id, merged_into: survivorId },
          },
        ),
      };
      continue;
    }
    if (options.mode === "create" && !target.isNew && !own.has(target.row.id)) {
      results[index] = {
        status: "error",
        error: identityTaken(target.row.id, input.phone_number ? "phone_number" : "business_scoped_user_id"),
      };
      continue;
    }
    let changes: ReturnType<typeof diffContact>;
    try {
      changes = diffContact(target.row, input, at);
    } catch (error) {
      if (!isApiError(error)) throw error;
      results[index] = { status: "error", error };
      continue;
    }
    const newPhone = changes.set.phone_number;
    const newBsuid = changes.set.business_scoped_user_id;
    const holder =
      (newPhone ? byKey.get(phoneKey(newPhone)) : undefined) ??
      (newBsuid ? byKey.get(bsuidKey(newBsuid)) : undefined);
    if (holder && holder !== target) {
      results[index] = {
        status: "error",
        error: identityTaken(
          holder.row.id,
          newPhone && byKey.get(phoneKey(newPhone)) ? "phone_number" : "business_scoped_user_id",
        ),
      };
      continue;
    }
    const newLabels = (input.label_ids ?? []).filter((id) => !target.labels.has(id));
    if (changes.changed.length === 0 && newLabels.length === 0) {
      results[index] = { status: "unchanged", id: target.row.id };
      touched.set(index, target);
      continue;
    }
    for (const field of changes.changed) target.changed.add(field);
    if (changes.changed.length > 0) {
      unregister(target);
      target.row = { ...target.row, ...changes.set };
      register(target);
    } else if (!target.isNew) {
      // A label change is a change: `updated_after` syncs must see it.
      target.row = { ...target.row, updated_at: Math.max(at, target.row.updated_at + 1) };
    }
    target.rowChanged = true;
    for (const id of newLabels) target.labels.add(id);
    touched.set(index, target);
    results[index] = { status: "updated", id: target.row.id };
  }

  const inserts = entries.filter((e) => e.isNew);
  const written = await insertContactRows(
    scope.db,
    inserts.map((e) => e.row),
  );
  await batchRepo.updateContactRows(
    scope.db,
    entries.filter((e) => !e.isNew && e.rowChanged).map((e) => e.row),
  );
  const lost = new Set(inserts.filter((e) => !written.has(e.row.id)));
  const pairs = entries
    .filter((e) => !lost.has(e))
    .flatMap((e) =>
      [...e.labels]
        .filter((id) => !e.labelsBefore.has(id))
        .map((label_id) => ({ contact_id: e.row.id, label_id })),
    );
  await labelsRepo.insertContactLabels(scope.db, pairs, at);
  await emitEvents(scope, batchEvents(entries, lost, options.source === "import" ? "import" : undefined));

  if (lost.size > 0) {
    // Another writer stored one of these identities between our read and our
    // insert: decide those items again against what is stored now.
    const redo = [...touched].filter(([, entry]) => lost.has(entry)).map(([index]) => index);
    if (depth >= 2) {
      for (const index of redo) {
        results[index] = {
          status: "error",
          error: new ApiError(
            "service_unavailable",
            "The contact was being written concurrently; try again.",
          ),
        };
      }
    } else {
      const again = await writeContactBatch(
        scope,
        account,
        redo.map((index) => items[index]!),
        options,
        depth + 1,
      );
      redo.forEach((index, i) => {
        results[index] = again[i]!;
      });
    }
  }
  return results;
}

/** The events of a batch: one per created contact, the updates, the labels added. */
function batchEvents(entries: Entry[], lost: Set<Entry>, origin: "import" | undefined): EventInput[] {
  const events: EventInput[] = [];
  for (const e of entries) {
    if (lost.has(e) || !e.rowChanged) continue;
    if (e.isNew) {
      events.push({ type: "contact.created", contactId: e.row.id, origin });
      continue;
    }
    events.push(...updateEvents(e.row.id, [...e.changed], e.row.marketing_opt_out === 1, origin));
    for (const labelId of e.labels) {
      if (!e.labelsBefore.has(labelId)) {
        events.push({ type: "label.added", contactId: e.row.id, labelId, origin });
      }
    }
  }
  return events;
}

/** Counts of a batch's results. */
export function countResults(results: BatchResult[]): {
  created: number;
  updated: number;
  unchanged: number;
  failed: number;
} {
  const counts = { created: 0, updated: 0, unchanged: 0, failed: 0 };
  for (const r of results) {
    if (r.status === "error") counts.failed++;
    else counts[r.status]++;
  }
  return counts;
}
