import { ApiError, fieldError, notFound } from "../errors.ts";
import { isId, newId } from "../ids.ts";
import { uniqueViolation } from "../store/driver-errors.ts";
import * as contactsRepo from "../store/repositories/contacts.ts";
import * as repo from "../store/repositories/labels.ts";
import { survivorIdOf } from "../store/repositories/merges.ts";
import type { Executor } from "../store/store.ts";
import { now } from "./clock.ts";
import { hasControlCharacters } from "./contact-fields.ts";
import type { Scope } from "./contacts.ts";
import { type EventInput, emitEvents } from "./events.ts";

export type { LabelRow } from "../store/repositories/labels.ts";

/** Spec §1: the colours a label may have. */
export const LABEL_COLORS = [
  "gray",
  "red",
  "orange",
  "amber",
  "yellow",
  "lime",
  "green",
  "emerald",
  "teal",
  "sky",
  "blue",
  "violet",
  "pink",
] as const;
export type LabelColor = (typeof LABEL_COLORS)[number];
export const DEFAULT_LABEL_COLOR: LabelColor = "gray";
export const LABEL_NAME_MAX = 50;
export const BULK_LABEL_MAX = 1000;

/** A label name: trimmed, 1–50 characters, no control characters. Unique per organisation, case-insensitively. */
export function requireLabelName(value: string, param = "name"): string {
  const name = value.trim();
  if (name.length < 1 || name.length > LABEL_NAME_MAX || hasControlCharacters(name)) {
    throw new ApiError(
      "invalid_field_value",
      `${param} must be 1 to ${LABEL_NAME_MAX} characters without control characters.`,
      { param },
    );
  }
  return name;
}

/** The key names are unique by. */
export function labelKey(name: string): string {
  return name.trim().toLowerCase();
}

function requireColor(value: string, param = "color"): LabelColor {
  if (!(LABEL_COLORS as readonly string[]).includes(value)) {
    throw new ApiError("invalid_field_value", `${param} must be one of ${LABEL_COLORS.join(", ")}.`, {
      param,
    });
  }
  return value as LabelColor;
}

function labelExists(existing: repo.LabelRow | undefined): ApiError {
  return new ApiError("label_exists", "A label with this name already exists (names are case-insensitive).", {
    param: "name",
    ...(existing ? { extra: { existing_id: existing.id } } : {}),
  });
}

export async function createLabel(
  scope: Scope,
  input: { name: string; color?: string | undefined },
): Promise<repo.LabelRow> {
  const name = requireLabelName(input.name);
  const color = input.color === undefined ? DEFAULT_LABEL_COLOR : requireColor(input.color);
  const key = labelKey(name);
  const existing = await repo.findLabelByName(scope.db, scope.organizationId, key);
  if (existing) throw labelExists(existing);
  const at = now();
  const row: repo.LabelRow = {
    id: newId("lbl"),
    organization_id: scope.organizationId,
    name,
    name_lower: key,
    color,
    created_at: at,
    updated_at: at,
  };
  try {
    await repo.insertLabel(scope.db, row);
  } catch (error) {
    if (uniqueViolation(error)) {
      throw labelExists(
        await repo.findLabelByName(scope.db, scope.organizationId, key).catch(() => undefined),
      );
    }
    throw error;
  }
  await emitEvents(scope, [{ type: "label.created", data: { label: labelRef(row) } }]);
  return row;
}

/** A label as events name it (as on a contact). */
function labelRef(label: repo.LabelRow): { id: string; name: string; color: string } {
  return { id: label.id, name: label.name, color: label.color };
}

export async function getLabel(scope: Scope, id: string, param = "id"): Promise<repo.LabelRow> {
  const row = await repo.findLabel(scope.db, scope.organizationId, id);
  if (!row) throw notFound("label", param);
  return row;
}

/**
 * The label a list filter names: a label id (`lbl_…`), or a label's name
 * (case-insensitive, within the organisation). A value starting `lbl_` is read
 * as an id and must be a well-formed one (400); an unknown name is 404, so a
 * typo is not mistaken for "no contacts carry this label". An unknown id keeps
 * answering an empty list, as before.
 */
export async function labelFilterId(scope: Scope, ref: string, param = "label"): Promise<string> {
  if (ref.startsWith("lbl_")) {
    if (!isId("lbl", ref)) {
      throw fieldError(
        "invalid_field_value",
        param,
        `${param} must be a label id such as lbl_01J… or a label name (see GET /v1/labels).`,
      );
    }
    return ref;
  }
  const name = requireLabelName(ref, param);
  const [row] = await repo.findLabelsByNames(scope.db, scope.organizationId, [labelKey(name)]);
  if (!row) {
    throw new ApiError(
      "resource_not_found",
      `No label named "${name}"; ${param} takes a label id or name (see GET /v1/labels).`,
      { param },
    );
  }
  return row.id;
}

/** PATCH a label: a no-op leaves `updated_at` alone; a rename onto another label's name is 409. */
export async function updateLabel(
  scope: Scope,
  id: string,
  input: { name?: string | undefined; color?: string | undefined },
): Promise<repo.LabelRow> {
  const current = await getLabel(scope, id);
  const patch: Partial<repo.LabelRow> = {};
  if (input.name !== undefined) {
    const name = requireLabelName(input.name);
    if (name !== current.name) {
      const key = labelKey(name);
      if (key !== current.name_lower) {
        const holder = await repo.findLabelByName(scope.db, scope.organizationId, key);
        if (holder && holder.id !== id) throw labelExists(holder);
      }
      patch.name = name;
      patch.name_lower = key;
    }
  }
  if (input.color !== undefined) {
    const color = requireColor(input.color);
    if (color !== current.color) patch.color = color;
  }
  if (Object.keys(patch).length === 0) return current;
  patch.updated_at = Math.max(now(), current.updated_at + 1);
  try {
    await repo.updateLabel(scope.db, id, patch);
  } catch (error) {
    if (uniqueViolation(error)) throw labelExists(undefined);
    throw error;
  }
  const updated = { ...current, ...patch };
  // One event for the label, not one per contact carrying it: the contacts
  // themselves did not change (docs/webhooks.md).
  const changed = (["name", "color"] as const).filter((f) => patch[f] !== undefined);
  await emitEvents(scope, [
    {
      type: "label.updated",
      changedFields: [...changed],
      data: {
        label: labelRef(updated),
        previous_attributes: Object.fromEntries(changed.map((f) => [f, current[f]])),
      },
    },
  ]);
  return updated;
}

/**
 * Deletes a label. Every contact that carried it loses it: each is changed
 * (`updated_at` moves, as for a detach) and told with a `label.removed`
 * (`label_deleted: true`), then the label's own `label.deleted` follows.
 */
export async function deleteLabel(scope: Scope, id: string): Promise<void> {
  const label = await getLabel(scope, id);
  const carriers = await repo.contactsCarrying(scope.db, id);
  await repo.touchContactsCarrying(scope.db, id, now());
  if (!(await repo.deleteLabel(scope.db, scope.organizationId, id))) throw notFound("label", "id");
  const ref = labelRef(label);
  await emitEvents(scope, [
    ...carriers.map(
      (contactId): EventInput => ({
        type: "label.removed",
        contactId,
        data: { label: ref, label_deleted: true },
      }),
    ),
    { type: "label.deleted", data: { label: ref } },
  ]);
}

export async function listLabels(
  scope: Scope,
  after: { created_at: number; id: string } | undefined,
  limit: number,
): Promise<repo.LabelRow[]> {
  return repo.listLabels(scope.db, scope.organizationId, after, limit);
}

async function requireContact(scope: Scope, contactId: string, accountId: string | undefined): Promise<void> {
  const row = await contactsRepo.findContactRow(scope.db, contactId);
  if (!row || row.organization_id !== scope.organizationId || (accountId && row.account_id !== accountId)) {
    throw notFound("contact", "id");
  }
}

/**
 * Attaches or detaches one label on one contact. Idempotent: attaching a label
 * the contact carries, or detaching one it lacks, changes nothing (and leaves
 * `updated_at` alone). Returns whether something changed.
 */
export async function setContactLabel(
  scope: Scope,
  contactId: string,
  labelId: string,
  operation: "attach" | "detach",
  accountId?: string,
): Promise<boolean> {
  // A merged-away id labels its survivor (docs/merge.md).
  const survivorId = await survivorIdOf(scope.db, scope.organizationId, contactId, accountId);
  if (survivorId !== undefined) return setContactLabel(scope, survivorId, labelId, operation);
  await requireContact(scope, contactId, accountId);
  const label = await getLabel(scope, labelId, "label_id");
  const at = now();
  const changed =
    operation === "attach"
      ? await repo.attachLabelTo(scope.db, labelId, [contactId], at)
      : await repo.detachLabelFrom(scope.db, labelId, [contactId]);
  await repo.touchContacts(scope.db, changed, at);
  await emitEvents(scope, labelEvents(changed, label, operation));
  return changed.length > 0;
}

export interface BulkLabelResult {
  applied: number;
  skipped: number;
  /** Ids that are no contact of this organisation (or of the account, on an account-scoped path). */
  not_found: string[];
}

/**
 * bulk_label: one label on up to 1,000 contacts, in set-based statements inside
 * the caller's transaction. `applied` counts contacts whose labels changed;
 * `skipped` the rest (already in that state, or not found).
 */
export async function bulkLabel(
  scope: Scope,
  input: { contact_ids: string[]; label_id: string; operation: "attach" | "detach" },
  accountId?: string,
): Promise<BulkLabelResult> {
  const ids = [...new Set(input.contact_ids)];
  if (ids.length < 1 || ids.length > BULK_LABEL_MAX) {
    throw new ApiError("invalid_field_value", `contact_ids must hold 1 to ${BULK_LABEL_MAX} ids.`, {
      param: "contact_ids",
    });
  }
  const label = await getLabel(scope, input.label_id, "label_id");
  const found = await contactIdsIn(scope.db, scope.organizationId, ids, accountId);
  const present = ids.filter((id) => found.has(id));
  const at = now();
  const changed =
    input.operation === "attach"
      ? await repo.attachLabelTo(scope.db, input.label_id, present, at)
      : await repo.detachLabelFrom(scope.db, input.label_id, present);
  await repo.touchContacts(scope.db, changed, at);
  await emitEvents(scope, labelEvents(changed, label, input.operation));
  return {
    applied: changed.length,
    skipped: input.contact_ids.length - changed.length,
    not_found: ids.filter((id) => !found.has(id)),
  };
}

/** label.added / label.removed for each contact whose labels changed. */
function labelEvents(
  contactIds: string[],
  label: repo.LabelRow,
  operation: "attach" | "detach",
): EventInput[] {
  const ref = labelRef(label);
  return contactIds.map((contactId) => ({
    type: operation === "attach" ? "label.added" : "label.removed",
    contactId,
    data: { label: ref },
  }));
}

async function contactIdsIn(
  db: Executor,
  organizationId: string,
  ids: string[],
  accountId: string | undefined,
): Promise<Set<string>> {
  let query = db
    .selectFrom("contacts")
    .select("id")
    .where("organization_id", "=", organizationId)
    .where("id", "in", ids)
    .where("merged_into", "is", null);
  if (accountId) query = query.where("account_id", "=", accountId);
  return new Set((await query.execute()).map((r) => r.id));
}

/**
 * Turns label references (ids `lbl_…` or names) into ids, creating labels
 * named but missing (colour gray). Used by imports, where a spreadsheet names
 * its labels. Returns the id per reference, or an error per bad reference.
 */
export async function resolveLabelRefs(
  scope: Scope,
  refs: string[],
): Promise<Map<string, { id: string } | { error: ApiError }>> {
  const out = new Map<string, { id: string } | { error: ApiError }>();
  const names = new Map<string, string>();
  for (const ref of new Set(refs)) {
    if (isId("lbl", ref)) {
      out.set(ref, { id: ref });
      continue;
    }
    try {
      const name = requireLabelName(ref, "labels");
      if (!names.has(labelKey(name))) names.set(labelKey(name), name);
    } catch (error) {
      out.set(ref, { error: error as ApiError });
    }
  }
  if (names.size > 0) {
    const keys = [...names.keys()];
    let rows = await repo.findLabelsByNames(scope.db, scope.organizationId, keys);
    const known = new Set(rows.map((r) => r.name_lower));
    const missing = keys.filter((k) => !known.has(k));
    if (missing.length > 0) {
      const at = now();
      const fresh = missing.map((key) => ({
        id: newId("lbl"),
        organization_id: scope.organizationId,
        name: names.get(key)!,
        name_lower: key,
        color: DEFAULT_LABEL_COLOR,
        created_at: at,
        updated_at: at,
      }));
      await repo.insertLabelsIfAbsent(scope.db, fresh);
      rows = await repo.findLabelsByNames(scope.db, scope.organizationId, keys);
      const createdIds = new Set(fresh.map((r) => r.id));
      await emitEvents(
        scope,
        rows
          .filter((r) => createdIds.has(r.id))
          .map((r): EventInput => ({ type: "label.created", data: { label: labelRef(r) } })),
      );
    }
    const byKey = new Map(rows.map((r) => [r.name_lower, r.id]));
    for (const ref of new Set(refs)) {
      if (out.has(ref)) continue;
      const id = byKey.get(labelKey(ref));
      out.set(
        ref,
        id ? { id } : { error: new ApiError("internal_error", `Could not create the label "${ref}".`) },
      );
    }
  }
  return out;
}
