import { ApiError, fieldError, notFound } from "../errors.ts";
import { isId, newId } from "../ids.ts";
import {
  type AccountRow,
  findAccount,
  findAccountByPhoneNumberId,
  listAccounts,
} from "../store/repositories/accounts.ts";
import * as repo from "../store/repositories/contacts.ts";
import { touchContacts } from "../store/repositories/labels.ts";
import { survivorIdOf } from "../store/repositories/merges.ts";
import type { ContactSource } from "../store/schema.ts";
import type { Executor } from "../store/store.ts";
import { PHONE_NUMBER_ID_PATTERN } from "./accounts.ts";
import { now } from "./clock.ts";
import {
  hasControlCharacters,
  type Metadata,
  mergeMetadata,
  metadataText,
  parseStoredMetadata,
  requireEmail,
  requireName,
  searchTermOf as searchTermOfQuery,
  searchTextOf,
  validateMetadata,
  withoutNulls,
} from "./contact-fields.ts";
import { getCustomer, requireExternalId, requireUuid } from "./customers.ts";
import { emitEvents, updateEvents } from "./events.ts";
import { type Bound, type KeysetPage, walkKeyset } from "./pagination.ts";
import { normalizePhone, requirePhone } from "./phone.ts";

export type { ContactRow, ContactView } from "../store/repositories/contacts.ts";

/**
 * The organisation a domain call acts for and the transaction (or the root
 * handle, for reads) it runs in; the handle knows its dialect (`dialectOf`).
 */
export interface Scope {
  db: Executor;
  organizationId: string;
}

/**
 * Fields a caller may set, in domain terms. Every surface translates its own
 * shape into this, and names the fields of the errors back in its own words
 * (`ApiError.named`); the rules below apply to all of them.
 */
export interface ContactInput {
  phone_number?: string | null | undefined;
  business_scoped_user_id?: string | null | undefined;
  parent_business_scoped_user_id?: string | null | undefined;
  username?: string | null | undefined;
  profile_name?: string | null | undefined;
  display_name?: string | null | undefined;
  email?: string | null | undefined;
  /** Merged: a key set to null is removed. */
  metadata?: Record<string, unknown> | undefined;
  /** Replaces the whole document (`metadata: null` on the wire clears it). */
  replace_metadata?: boolean | undefined;
  label_ids?: string[] | undefined;
  /** A customer of the organisation (UUID); null unlinks. */
  customer_id?: string | null | undefined;
  /**
   * A marketing preference event (WhatsApp `user_preferences`): applied only
   * when newer than the one already recorded, so events may arrive in any order.
   */
  marketing_preference?: MarketingPreference | undefined;
}

/**
 * `metadata` as every surface takes it on a write: an object is merged into
 * the contact's (a key set to null is removed), `null` clears the whole
 * document, absent leaves it as it is.
 */
export function metadataChange(
  metadata: Record<string, unknown> | null | undefined,
): Pick<ContactInput, "metadata" | "replace_metadata"> {
  return metadata === null ? { replace_metadata: true } : { metadata };
}

export interface MarketingPreference {
  /** true: the person stopped marketing messages; false: resumed them. */
  opt_out: boolean;
  /** When the person made the choice (ms). */
  at: number;
}

const BSUID_MAX = 128;

/**
 * An account as phone numbers are read for it: its id, or the row (which
 * saves looking up its `default_country`).
 */
export type AccountRef = string | Pick<AccountRow, "id" | "default_country">;

function accountIdOf(account: AccountRef | undefined): string | undefined {
  return typeof account === "string" ? account : account?.id;
}

/**
 * The country local-format phone numbers are read in (docs/contacts.md,
 * "Phone numbers"): the account's `default_country`; with no account named
 * (organisation-wide lists and lookups), the one default country the
 * organisation's accounts agree on, if they set exactly one; otherwise none.
 */
export async function phoneCountryOf(scope: Scope, account: AccountRef | undefined): Promise<string | null> {
  if (typeof account === "object") return account.default_country;
  if (account !== undefined) return (await findAccount(scope.db, account))?.default_country ?? null;
  const countries = new Set(
    (await listAccounts(scope.db, scope.organizationId)).flatMap((a) =>
      a.default_country ? [a.default_country] : [],
    ),
  );
  return countries.size === 1 ? [...countries][0]! : null;
}

/** Does reading this phone need a default country? Only digits written without `+` or `00` do. */
function mayBeLocal(phone: string): boolean {
  return !/^\s*(\+|00)/.test(phone);
}

/**
 * Validates and normalises the given fields; absent fields stay absent.
 * Errors name the domain fields. `phoneCountry` is the default country of
 * the contact's account (`phoneCountryOf`), for local-format numbers.
 */
export function normalizeInput(input: ContactInput, phoneCountry: string | null = null): ContactInput {
  const out: ContactInput = {};
  if (input.phone_number !== undefined) {
    out.phone_number =
      input.phone_number === null ? null : requirePhone(input.phone_number, "phone_number", phoneCountry);
  }
  for (const field of ["business_scoped_user_id", "parent_business_scoped_user_id", "username"] as const) {
    const value = input[field];
    if (value === undefined) continue;
    if (value !== null && (value.trim() === "" || value.length > BSUID_MAX || /\s/.test(value))) {
      throw fieldError(
        "invalid_field_value",
        field,
        `${field} must be 1 to ${BSUID_MAX} characters without spaces.`,
      );
    }
    out[field] = value;
  }
  for (const field of ["profile_name", "display_name"] as const) {
    const value = input[field];
    if (value === undefined) continue;
    out[field] = value === null ? null : requireName(value, field);
  }
  if (input.email !== undefined) {
    out.email = input.email === null ? null : requireEmail(input.email, "email");
  }
  if (input.metadata !== undefined) {
    out.metadata = validateMetadata(input.metadata, "metadata");
  }
  if (input.replace_metadata) out.replace_metadata = true;
  if (input.customer_id !== undefined) {
    out.customer_id = input.customer_id === null ? null : requireUuid(input.customer_id, "customer_id");
  }
  if (input.label_ids !== undefined) out.label_ids = [...new Set(input.label_ids)];
  if (input.marketing_preference !== undefined) {
    const { opt_out, at } = input.marketing_preference;
    if (!Number.isSafeInteger(at) || at < 0) {
      throw fieldError(
        "invalid_field_value",
        "marketing_preference",
        "A marketing preference needs a valid timestamp.",
      );
    }
    out.marketing_preference = { opt_out, at };
  }
  return out;
}

/**
 * The account a create on the org-level path goes to: `from` (its E.164 number
 * or its phone_number_id) when given; otherwise the only connected account.
 */
export async function resolveAccount(
  scope: Scope,
  from: string | undefined,
  param = "from",
): Promise<AccountRow> {
  if (from !== undefined) {
    if (new RegExp(PHONE_NUMBER_ID_PATTERN).test(from)) {
      const byId = await findAccountByPhoneNumberId(scope.db, from);
      if (byId && byId.organization_id === scope.organizationId) return byId;
    }
    const accounts = await listAccounts(scope.db, scope.organizationId);
    // A local-format `from` is read in each account's own default country.
    const match = accounts.find((a) => normalizePhone(from, a.default_country) === a.phone_number);
    if (!match) throw notFound("account", param);
    return match;
  }
  const connected = await listAccounts(scope.db, scope.organizationId, "connected");
  if (connected.length === 1) return connected[0]!;
  if (connected.length === 0) {
    throw new ApiError("no_connected_account", "The organization has no connected WhatsApp number.", {
      param,
    });
  }
  throw new ApiError("account_required", `The organization has several numbers; name one with ${param}.`, {
    param,
  });
}

/** A label id the organisation does not have (404 naming the field `label_ids`). */
export function noSuchLabel(id: string): ApiError {
  return fieldError("resource_not_found", "label_ids", `No such label: ${id}.`);
}

async function requireLabels(scope: Scope, ids: string[] | undefined): Promise<string[]> {
  if (!ids || ids.length === 0) return [];
  const found = await repo.existingLabelIds(scope.db, scope.organizationId, ids);
  const missing = ids.find((id) => !found.has(id));
  if (missing) throw noSuchLabel(missing);
  return ids;
}

/** A customer_id must name a customer of the same organisation (404 otherwise). */
async function requireCustomerOf(scope: Scope, input: ContactInput): Promise<void> {
  if (input.customer_id === undefined || input.customer_id === null) return;
  await getCustomer(scope.db, scope.organizationId, input.customer_id, "customer_id");
}

/** 409 `contact_exists`: another contact of the account holds this identity (`field`). */
export function identityTaken(
  existingId: string,
  field: "phone_number" | "business_scoped_user_id",
): ApiError {
  return fieldError("contact_exists", field, "A contact with this identity already exists in this account.", {
    extra: { existing_id: existingId },
  });
}

/** A create needs a phone number or a business-scoped user id. */
export function requireIdentity(input: ContactInput): void {
  if (!input.phone_number && !input.business_scoped_user_id) {
    throw fieldError("missing_required_field", "phone_number", "phone_number is required.");
  }
}

/**
 * Creates a contact. The unique indexes decide: of two concurrent creates of
 * one identity, one inserts and the other finds the winner and reports 409
 * `contact_exists` with its id.
 */
export async function createContact(
  scope: Scope,
  account: AccountRow,
  raw: ContactInput,
  source: ContactSource,
): Promise<repo.ContactView> {
  const input = normalizeInput(raw, account.default_country);
  requireIdentity(input);
  const labelIds = await requireLabels(scope, input.label_ids);
  await requireCustomerOf(scope, input);
  const row = buildRow(scope.organizationId, account.id, input, source, now());
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await repo.insertContactIfAbsent(scope.db, row)) {
      await repo.attachLabels(scope.db, row.id, labelIds, row.created_at);
      await emitEvents(scope, [{ type: "contact.created", contactId: row.id }]);
      return (await repo.findContactView(scope.db, scope.organizationId, row.id))!;
    }
    const existing = await repo.findByIdentity(scope.db, account.id, input);
    if (existing) {
      throw identityTaken(
        await liveIdOf(scope, existing.id),
        input.phone_number ? "phone_number" : "business_scoped_user_id",
      );
    }
    // The conflicting row vanished between the insert and the read: try again.
  }
  throw new ApiError("internal_error", "Could not create the contact; try again.");
}

export function buildRow(
  organizationId: string,
  accountId: string,
  input: ContactInput,
  source: ContactSource,
  at: number,
): repo.ContactRow {
  const fields = {
    phone_number: input.phone_number ?? null,
    business_scoped_user_id: input.business_scoped_user_id ?? null,
    parent_business_scoped_user_id: input.parent_business_scoped_user_id ?? null,
    username: input.username ?? null,
    profile_name: input.profile_name ?? null,
    display_name: input.display_name ?? null,
    email: input.email ?? null,
  };
  return {
    customer_id: input.customer_id ?? null,
    id: newId("ctc"),
    organization_id: organizationId,
    account_id: accountId,
    ...fields,
    metadata: metadataText(withoutNulls((input.metadata as Metadata | undefined) ?? {})),
    source,
    marketing_opt_out: input.marketing_preference?.opt_out ? 1 : 0,
    marketing_opt_out_at: input.marketing_preference?.at ?? null,
    search_text: searchTextOf(fields),
    created_at: at,
    updated_at: at,
  };
}

const PLAIN_FIELDS = [
  "phone_number",
  "business_scoped_user_id",
  "parent_business_scoped_user_id",
  "username",
  "profile_name",
  "display_name",
  "email",
  "customer_id",
] as const;

export interface ContactChanges {
  /**
   * Column values to write; empty when nothing changes. It may hold only
   * `marketing_opt_out_at` (a newer event repeating the recorded choice), in
   * which case `changed` is empty and `updated_at` is left alone.
   */
  set: Partial<repo.ContactRow>;
  /** Names of the fields whose values change. */
  changed: string[];
}

/**
 * What applying a (normalised) input to a stored row would change. Pure: the
 * same rule serves PATCH, batch upsert, imports and webhooks, and a no-op
 * leaves `updated_at` alone.
 */
export function diffContact(row: repo.ContactRow, input: ContactInput, at: number): ContactChanges {
  const set: Partial<repo.ContactRow> = {};
  const changed: string[] = [];
  for (const field of PLAIN_FIELDS) {
    const value = input[field];
    if (value !== undefined && value !== row[field]) {
      set[field] = value;
      changed.push(field);
    }
  }
  if (input.metadata !== undefined || input.replace_metadata) {
    const current = parseStoredMetadata(row.metadata);
    const next = input.replace_metadata
      ? withoutNulls((input.metadata as Metadata | undefined) ?? {})
      : mergeMetadata(current, (input.metadata as Metadata | undefined) ?? {});
    const text = metadataText(next);
    if (text !== metadataText(current)) {
      set.metadata = text;
      changed.push("metadata");
    }
  }
  applyMarketingPreference(row, input.marketing_preference, set, changed);
  // Only the preference's timestamp moved (a newer event repeating the same
  // choice): it is recorded, but nothing a client sees changed.
  if (changed.length === 0) return { set, changed };
  const merged = { ...row, ...set };
  if (merged.phone_number === null && merged.business_scoped_user_id === null) {
    throw fieldError(
      "invalid_field_value",
      "phone_number",
      "A contact needs a phone number or a business-scoped user id.",
    );
  }
  const searchText = searchTextOf(merged);
  if (searchText !== row.search_text) set.search_text = searchText;
  set.updated_at = Math.max(at, row.updated_at + 1);
  return { set, changed };
}

/**
 * Newest event wins: an event older than the recorded one is ignored; on a tie
 * "stop" wins, because honouring an opt-out is the safe side.
 */
function applyMarketingPreference(
  row: repo.ContactRow,
  preference: MarketingPreference | undefined,
  set: Partial<repo.ContactRow>,
  changed: string[],
): void {
  if (preference === undefined) return;
  const recorded = row.marketing_opt_out_at;
  const flag = preference.opt_out ? 1 : 0;
  const newer =
    recorded === null ||
    preference.at > recorded ||
    (preference.at === recorded && flag === 1 && row.marketing_opt_out === 0);
  if (!newer) return;
  if (preference.at !== recorded) set.marketing_opt_out_at = preference.at;
  if (flag !== row.marketing_opt_out) {
    set.marketing_opt_out = flag;
    changed.push("marketing_opt_out");
  }
}

/**
 * Applies changes to a stored contact; an identity already held by another
 * contact of the account is 409 `contact_exists`.
 */
export async function applyChanges(
  scope: Scope,
  row: repo.ContactRow,
  changes: ContactChanges,
): Promise<void> {
  if (Object.keys(changes.set).length === 0) return;
  const identity = {
    phone_number: changes.set.phone_number ?? undefined,
    business_scoped_user_id: changes.set.business_scoped_user_id ?? undefined,
  };
  if (identity.phone_number || identity.business_scoped_user_id) {
    const holder = await repo.findByIdentity(scope.db, row.account_id, identity);
    if (holder && holder.id !== row.id) {
      throw identityTaken(
        await liveIdOf(scope, holder.id),
        identity.phone_number ? "phone_number" : "business_scoped_user_id",
      );
    }
  }
  // A writer that takes the identity between the check and this update makes it
  // fail with a unique violation (on PostgreSQL the transaction is then
  // aborted, so nothing more can be asked here); the write path reruns the
  // transaction, whose check above then reports the holder.
  await repo.updateContactRow(scope.db, scope.organizationId, row.id, changes.set);
  const optOut = changes.set.marketing_opt_out;
  await emitEvents(
    scope,
    updateEvents(row.id, changes.changed, optOut === undefined ? undefined : optOut === 1),
  );
}

/** The id of the live contact behind an id: itself, or the survivor it was merged into (docs/merge.md). */
export async function liveIdOf(scope: Scope, id: string): Promise<string> {
  return (await survivorIdOf(scope.db, scope.organizationId, id)) ?? id;
}

/** A contact found by id; `merged_into` is set when the id was merged away and `contact` is its survivor. */
export interface FoundContact {
  contact: repo.ContactView;
  merged_into?: string | undefined;
}

/**
 * A contact by id. A merged-away id answers its survivor (which may be in
 * another account: the account filter applies to the id asked for).
 */
export async function findContact(
  scope: Scope,
  id: string,
  accountId?: string,
  param = "id",
): Promise<FoundContact> {
  const view = await repo.findContactView(scope.db, scope.organizationId, id, accountId);
  if (view) return { contact: view };
  const survivorId = await survivorIdOf(scope.db, scope.organizationId, id, accountId);
  const survivor =
    survivorId === undefined
      ? undefined
      : await repo.findContactView(scope.db, scope.organizationId, survivorId);
  if (!survivor) throw notFound("contact", param);
  return { contact: survivor, merged_into: survivor.id };
}

export async function getContact(scope: Scope, id: string, accountId?: string): Promise<repo.ContactView> {
  return (await findContact(scope, id, accountId)).contact;
}

/** PATCH: validates, merges metadata, and writes only what changes. */
export async function updateContact(
  scope: Scope,
  id: string,
  raw: ContactInput,
  accountId?: string,
): Promise<{ contact: repo.ContactView; changed: string[] }> {
  const { phone_number: phone, ...rest } = raw;
  const input = normalizeInput(rest);
  const current = await getContact(scope, id, accountId);
  if (phone !== undefined) {
    // A local-format number is read in the default country of the contact's account.
    const country =
      phone !== null && mayBeLocal(phone) ? await phoneCountryOf(scope, current.account_id) : null;
    input.phone_number = normalizeInput({ phone_number: phone }, country).phone_number;
  }
  await requireCustomerOf(scope, input);
  const changes = diffContact(current, input, now());
  await applyChanges(scope, current, changes);
  const labelIds = await requireLabels(scope, input.label_ids);
  const at = now();
  const added = await repo.attachLabels(scope.db, current.id, labelIds, at);
  if (added.length > 0) {
    // A label change is a change of the contact (docs/labels.md), told as label.added.
    if (changes.changed.length === 0) await touchContacts(scope.db, [current.id], at);
    await emitEvents(
      scope,
      added.map((labelId) => ({ type: "label.added" as const, contactId: current.id, labelId })),
    );
  }
  const contact =
    changes.changed.length === 0 && added.length === 0 ? current : await getContact(scope, current.id);
  return { contact, changed: changes.changed };
}

/** Deletes a contact; a merged-away id deletes its survivor (the person), and with it the tombstones. */
export async function deleteContact(scope: Scope, id: string, accountId?: string): Promise<void> {
  const current = await getContact(scope, id, accountId);
  if (!(await repo.deleteContactRow(scope.db, scope.organizationId, current.id)))
    throw notFound("contact", "id");
  await emitEvents(scope, [{ type: "contact.deleted", contact: current }]);
}

/**
 * What a contact list may be narrowed to, in domain terms; every surface
 * translates its query into this. Text is as given, instants are
 * milliseconds (each surface reads its wire format); `contactFilters` checks
 * and normalises them, and its errors name these fields.
 */
export interface ContactFilters {
  /** Exact phone number (any formatting `normalizePhone` reads). */
  phone?: string | undefined;
  /** Full-text search over names, phone, email and BSUIDs. */
  search?: string | undefined;
  /** A label's id: contacts carrying it. */
  label?: string | undefined;
  created_after?: number | undefined;
  created_before?: number | undefined;
  updated_after?: number | undefined;
  marketing_opt_out?: boolean | undefined;
  business_scoped_user_id?: string | undefined;
  customer_id?: string | undefined;
  customer_external_id?: string | undefined;
  has_customer?: boolean | undefined;
  profile_name_contains?: string | undefined;
  /** Digits of the phone number, with or without `+` and formatting. */
  phone_contains?: string | undefined;
}

/** A free-text filter: 1–200 characters without control characters. */
function requireFilterText(value: string | undefined, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (value.length < 1 || value.length > 200 || hasControlCharacters(value)) {
    throw fieldError(
      "invalid_field_value",
      field,
      `${field} must be 1 to 200 characters without control characters.`,
    );
  }
  return value;
}

/** Digits, optionally with `+` and phone formatting; matched on the digits. */
function digitsFilter(value: string | undefined, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[\d\s\-.()+]{1,40}$/.test(value) || !/\d/.test(value)) {
    throw fieldError("invalid_field_value", field, `${field} must be digits of a phone number.`);
  }
  return value.replace(/\D/g, "");
}

/**
 * Checks the filters of a contact list and makes them repository filters
 * (normalised, so cursors bind to meaning). `phoneCountry` reads a
 * local-format `phone` (see `resolveContactFilters`, which finds it).
 */
export function contactFilters(
  organizationId: string,
  accountId: string | undefined,
  filters: ContactFilters,
  phoneCountry: string | null = null,
): repo.ContactFilters {
  const search = requireFilterText(filters.search, "search");
  const profileName = requireFilterText(filters.profile_name_contains, "profile_name_contains");
  const bsuid = requireFilterText(filters.business_scoped_user_id, "business_scoped_user_id");
  return {
    organizationId,
    accountId,
    phone: filters.phone === undefined ? undefined : requirePhone(filters.phone, "phone", phoneCountry),
    searchTerm: search === undefined ? undefined : searchTermOfQuery(search),
    labelId: filters.label,
    createdAfter: filters.created_after,
    createdBefore: filters.created_before,
    updatedAfter: filters.updated_after,
    marketingOptOut: filters.marketing_opt_out,
    businessScopedUserId: bsuid,
    customerId:
      filters.customer_id === undefined ? undefined : requireUuid(filters.customer_id, "customer_id"),
    customerExternalId:
      filters.customer_external_id === undefined
        ? undefined
        : requireExternalId(filters.customer_external_id, "customer_external_id"),
    hasCustomer: filters.has_customer,
    profileNameContains: profileName?.toLowerCase(),
    phoneContains: digitsFilter(filters.phone_contains, "phone_contains"),
  };
}

/**
 * `contactFilters` for a list of the organisation (no account) or of one
 * account, reading a local-format `phone` filter in that account's default
 * country (`phoneCountryOf`); the country is looked up only when needed.
 */
export async function resolveContactFilters(
  scope: Scope,
  account: AccountRef | undefined,
  filters: ContactFilters,
): Promise<repo.ContactFilters> {
  const country =
    filters.phone !== undefined && mayBeLocal(filters.phone) ? await phoneCountryOf(scope, account) : null;
  return contactFilters(scope.organizationId, accountIdOf(account), filters, country);
}

export async function listContacts(
  scope: Scope,
  filters: repo.ContactFilters,
  after: repo.Keyset | undefined,
  limit: number,
): Promise<repo.ContactView[]> {
  return repo.listContactViews(scope.db, filters, after, limit);
}

/**
 * A page that can be walked both ways (`after` → older, `before` → newer),
 * with exact ends: the page's `before`/`after` positions are null when
 * nothing lies on that side.
 */
export async function listContactsPage(
  scope: Scope,
  filters: repo.ContactFilters,
  bound: Bound,
  limit: number,
): Promise<KeysetPage<repo.ContactView>> {
  return walkKeyset(
    bound,
    limit,
    (b, n) =>
      b.before
        ? repo.listContactViewsBefore(scope.db, filters, b.before, n)
        : repo.listContactViews(scope.db, filters, b.after, n),
    (b) => repo.contactsExist(scope.db, filters, b),
  );
}

/**
 * How many contacts match: without filters other than the account, the
 * maintained count (constant time, exact under concurrent writes); with
 * filters, an exact count query, whose cost grows with the matching rows
 * (docs/pagination.md).
 */
export async function countContacts(scope: Scope, filters: repo.ContactFilters): Promise<number> {
  if (repo.isUnfiltered(filters)) {
    return repo.maintainedContactCount(scope.db, filters.organizationId, filters.accountId);
  }
  return repo.countContacts(scope.db, filters);
}

/** Offset pagination (the caller bounds the window): one page and the total count. */
export async function listContactsAtOffset(
  scope: Scope,
  filters: repo.ContactFilters,
  offset: number,
  limit: number,
): Promise<{ rows: repo.ContactView[]; total: number }> {
  const total = await countContacts(scope, filters);
  const rows = offset >= total ? [] : await repo.listContactViewsAt(scope.db, filters, offset, limit);
  return { rows, total };
}

const PHONE_LIKE = /^\+?[\d\s\-.()]{6,40}$/;

/**
 * A contact by any identifier a client may hold: its id (`ctc_…`), its phone
 * (with or without `+`), its business-scoped user id, or a parent BSUID. Phone
 * and BSUIDs are unique per account, so across an organisation's accounts (or
 * for a parent BSUID, shared by design) the newest match wins; `accountId`
 * restricts the lookup to one account. Nothing found (or another
 * organisation's) is 404.
 */
export async function findContactByIdentifier(
  scope: Scope,
  identifier: string,
  account?: AccountRef,
  param = "identifier",
): Promise<repo.ContactView> {
  return (await findContactByIdentifierResolved(scope, identifier, account, param)).contact;
}

/** findContactByIdentifier, saying when the identifier led to a merged-away contact (docs/merge.md). */
export async function findContactByIdentifierResolved(
  scope: Scope,
  identifier: string,
  account?: AccountRef,
  param = "identifier",
): Promise<FoundContact> {
  const missing = () => notFound("contact", param);
  const accountId = accountIdOf(account);
  let id: string | undefined;
  if (isId("ctc", identifier)) {
    id = identifier;
  } else if (identifier.length <= 128) {
    // A local-format number is read in the account's default country; an
    // ambiguous one is looked up as a business-scoped user id only.
    const phone = !PHONE_LIKE.test(identifier)
      ? undefined
      : normalizePhone(identifier, mayBeLocal(identifier) ? await phoneCountryOf(scope, account) : null);
    const lookups: Array<[repo.IdentifierColumn, string]> = phone ? [["phone_number", phone]] : [];
    // BSUIDs never contain spaces (see normalizeInput).
    if (!/\s/.test(identifier)) {
      lookups.push(["business_scoped_user_id", identifier], ["parent_business_scoped_user_id", identifier]);
    }
    for (const [column, value] of lookups) {
      id = await repo.findNewestContactIdBy(scope.db, scope.organizationId, accountId, column, value);
      if (id) break;
    }
  }
  if (!id) throw missing();
  return findContact(scope, id, accountId, param);
}
