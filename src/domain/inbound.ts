import { createHash, createHmac } from "node:crypto";
import { ApiError } from "../errors.ts";
import { type AccountRow, findAccountByPhoneNumberId } from "../store/repositories/accounts.ts";
import * as repo from "../store/repositories/contacts.ts";
import { pruneReceipts, recordReceipt } from "../store/repositories/inbound-receipts.ts";
import { survivorIdOf } from "../store/repositories/merges.ts";
import type { Dialect, Executor } from "../store/store.ts";
import { constantTimeEqual } from "./auth.ts";
import { NAME_MAX } from "./contact-fields.ts";
import {
  applyChanges,
  type ContactInput,
  createContact,
  deleteContact,
  diffContact,
  type FieldParams,
  type MarketingPreference,
  normalizeInput,
  type Scope,
} from "./contacts.ts";

/**
 * Contacts observed from WhatsApp (spec §6): Meta's webhook deliveries turned
 * into contact changes through the contacts domain. Framework-free: the HTTP
 * layer verifies the signature with `verifyMetaSignature`, parses with
 * `parseDelivery`, and runs `ingestDelivery` inside one transaction.
 */

// ---------------------------------------------------------------- signature

const SIGNATURE_RE = /^sha256=([0-9a-fA-F]{64})$/;

/** `sha256=<hex>`: the HMAC-SHA256 of the exact bytes, keyed with the app secret (what Meta sends). */
export function signMetaPayload(appSecret: string, raw: Buffer | string): string {
  return `sha256=${createHmac("sha256", appSecret).update(raw).digest("hex")}`;
}

/** True when `header` is a valid `X-Hub-Signature-256` of `raw`; compared in constant time. */
export function verifyMetaSignature(appSecret: string, raw: Buffer, header: string | undefined): boolean {
  if (header === undefined) return false;
  const match = SIGNATURE_RE.exec(header.trim());
  if (!match) return false;
  return constantTimeEqual(signMetaPayload(appSecret, raw), `sha256=${match[1]!.toLowerCase()}`);
}

// ---------------------------------------------------------------- parsed shape

/** A person as Meta names them in `contacts[]` (wire values, not yet normalised). */
export interface ObservedPerson {
  wa_id?: string | undefined;
  user_id?: string | undefined;
  parent_user_id?: string | undefined;
  profile_name?: string | undefined;
  username?: string | undefined;
}

/** `user_changed_number` / `user_changed_user_id`: the identity moves from `previous` to `next`. */
export interface IdentityChange {
  type: "user_changed_number" | "user_changed_user_id";
  previous: { wa_id?: string | undefined; user_id?: string | undefined };
  next: { wa_id?: string | undefined; user_id?: string | undefined; parent_user_id?: string | undefined };
}

/** A `user_preferences` marketing stop/resume. */
export interface PreferenceEvent {
  wa_id?: string | undefined;
  user_id?: string | undefined;
  opt_out: boolean;
  /** ms */
  at: number;
}

/** One `entry[].changes[]` item this service acts on. */
export interface DeliveryChange {
  field: string;
  phone_number_id: string;
  /** SHA-256 of the change's field and value: the redelivery receipt's key. */
  digest: string;
  /** `entry[i].changes[j]`, for log lines. */
  path: string;
  identity_changes: IdentityChange[];
  contacts: ObservedPerson[];
  preferences: PreferenceEvent[];
}

export interface Delivery {
  object: string;
  changes: DeliveryChange[];
}

export const WHATSAPP_OBJECT = "whatsapp_business_account";
const HANDLED_FIELDS = new Set(["messages", "user_preferences"]);
const MAX_ID = 128;

function malformed(param: string, message: string): ApiError {
  return new ApiError("invalid_field_value", `${param} ${message}`, { param });
}

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function objectAt(value: unknown, param: string): Obj {
  if (!isObject(value)) throw malformed(param, "must be an object.");
  return value;
}

function arrayAt(value: unknown, param: string, required = false): unknown[] {
  if (value === undefined && !required) return [];
  if (!Array.isArray(value)) throw malformed(param, "must be an array.");
  return value;
}

function stringAt(value: unknown, param: string, max = MAX_ID): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string" || value.length > max) {
    throw malformed(param, `must be a string of at most ${max} characters.`);
  }
  return value;
}

/** Meta sends empty strings for absent values; they mean "not given". */
function textAt(value: unknown, param: string, max: number): string | undefined {
  const text = stringAt(value, param, max);
  return text === undefined || text.trim() === "" ? undefined : text;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it replaces
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]+/g;

/**
 * A profile name is whatever the person typed into WhatsApp: it is kept as
 * far as the name rules allow (control characters become spaces, the length
 * is cut to NAME_MAX) rather than failing the whole delivery, which Meta would
 * then retry for days.
 */
function profileNameAt(value: unknown, param: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw malformed(param, "must be a string.");
  const name = value.replace(CONTROL_CHARACTERS, " ").trim().slice(0, NAME_MAX).trim();
  return name === "" ? undefined : name;
}

/** Unix seconds as a number or a digit string (Meta uses both) → ms. */
function secondsAt(value: unknown, param: string): number {
  const seconds =
    typeof value === "number"
      ? value
      : typeof value === "string" && /^\d{1,12}$/.test(value)
        ? Number(value)
        : NaN;
  if (!Number.isSafeInteger(seconds) || seconds < 0 || seconds > 1e11) {
    throw malformed(param, "must be a Unix timestamp in seconds.");
  }
  return seconds * 1000;
}

function parsePerson(value: unknown, param: string): ObservedPerson {
  const item = objectAt(value, param);
  const profile = item.profile === undefined ? {} : objectAt(item.profile, `${param}.profile`);
  const person: ObservedPerson = {
    wa_id: stringAt(item.wa_id, `${param}.wa_id`, 40),
    user_id: stringAt(item.user_id, `${param}.user_id`),
    parent_user_id: stringAt(item.parent_user_id, `${param}.parent_user_id`),
    profile_name: profileNameAt(profile.name, `${param}.profile.name`),
    username: textAt(profile.username, `${param}.profile.username`, MAX_ID),
  };
  if (person.wa_id === undefined && person.user_id === undefined) {
    throw new ApiError("missing_required_field", `${param} needs wa_id or user_id.`, {
      param: `${param}.wa_id`,
    });
  }
  return person;
}

function parseSystemMessage(message: Obj, param: string): IdentityChange | undefined {
  const system = objectAt(message.system, `${param}.system`);
  const type = stringAt(system.type, `${param}.system.type`);
  if (type !== "user_changed_number" && type !== "user_changed_user_id") return undefined;
  const change: IdentityChange = {
    type,
    previous: {
      wa_id: stringAt(message.from, `${param}.from`, 40),
      user_id:
        stringAt(system.previous_user_id, `${param}.system.previous_user_id`) ??
        stringAt(message.from_user_id, `${param}.from_user_id`),
    },
    next: {
      wa_id: stringAt(system.wa_id, `${param}.system.wa_id`, 40),
      user_id: stringAt(system.user_id, `${param}.system.user_id`),
      parent_user_id: stringAt(system.parent_user_id, `${param}.system.parent_user_id`),
    },
  };
  if (change.previous.wa_id === undefined && change.previous.user_id === undefined) {
    throw new ApiError("missing_required_field", `${param} needs from or from_user_id.`, {
      param: `${param}.from`,
    });
  }
  const needed = type === "user_changed_number" ? "wa_id" : "user_id";
  if (change.next[needed] === undefined) {
    throw new ApiError("missing_required_field", `${param}.system.${needed} is required for ${type}.`, {
      param: `${param}.system.${needed}`,
    });
  }
  return change;
}

function parsePreference(value: unknown, param: string): PreferenceEvent | undefined {
  const item = objectAt(value, param);
  const category = stringAt(item.category, `${param}.category`);
  const choice = stringAt(item.value, `${param}.value`);
  // Other categories and values are Meta's to add; they are acknowledged and not acted on.
  if (category !== "marketing_messages" || (choice !== "stop" && choice !== "resume")) return undefined;
  const event: PreferenceEvent = {
    wa_id: stringAt(item.wa_id, `${param}.wa_id`, 40),
    user_id: stringAt(item.user_id, `${param}.user_id`),
    opt_out: choice === "stop",
    at: secondsAt(item.timestamp, `${param}.timestamp`),
  };
  if (event.wa_id === undefined && event.user_id === undefined) {
    throw new ApiError("missing_required_field", `${param} needs wa_id or user_id.`, {
      param: `${param}.wa_id`,
    });
  }
  return event;
}

function parseChange(value: unknown, param: string): DeliveryChange | undefined {
  const change = objectAt(value, param);
  const field = stringAt(change.field, `${param}.field`);
  if (field === undefined) {
    throw new ApiError("missing_required_field", `${param}.field is required.`, { param: `${param}.field` });
  }
  if (!HANDLED_FIELDS.has(field)) return undefined;
  const body = objectAt(change.value, `${param}.value`);
  const metadata = objectAt(body.metadata, `${param}.value.metadata`);
  const phoneNumberId = stringAt(metadata.phone_number_id, `${param}.value.metadata.phone_number_id`, 64);
  if (phoneNumberId === undefined || phoneNumberId === "") {
    throw new ApiError("missing_required_field", `${param}.value.metadata.phone_number_id is required.`, {
      param: `${param}.value.metadata.phone_number_id`,
    });
  }
  const contacts = arrayAt(body.contacts, `${param}.value.contacts`).map((item, i) =>
    parsePerson(item, `${param}.value.contacts[${i}]`),
  );
  const identityChanges: IdentityChange[] = [];
  arrayAt(body.messages, `${param}.value.messages`).forEach((item, i) => {
    const message = objectAt(item, `${param}.value.messages[${i}]`);
    if (message.type !== "system") return;
    const parsed = parseSystemMessage(message, `${param}.value.messages[${i}]`);
    if (parsed) identityChanges.push(parsed);
  });
  const preferences: PreferenceEvent[] = [];
  arrayAt(body.user_preferences, `${param}.value.user_preferences`).forEach((item, i) => {
    const parsed = parsePreference(item, `${param}.value.user_preferences[${i}]`);
    if (parsed) preferences.push(parsed);
  });
  arrayAt(body.statuses, `${param}.value.statuses`);
  return {
    field,
    phone_number_id: phoneNumberId,
    digest: createHash("sha256").update(field).update("\n").update(JSON.stringify(body)).digest("hex"),
    path: param,
    identity_changes: identityChanges,
    contacts,
    preferences,
  };
}

/**
 * Parses a delivery's raw bytes (already authenticated). Invalid JSON is 400
 * `invalid_json`; a shape this service cannot act on safely is 400
 * `invalid_field_value` / `missing_required_field` naming the path. Fields and
 * message types it does not act on are accepted and skipped, so that Meta
 * adding things never turns deliveries into errors.
 */
export function parseDelivery(raw: Buffer): Delivery {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString("utf8"));
  } catch {
    throw new ApiError("invalid_json", "The body is not valid JSON.");
  }
  const root = objectAt(json, "body");
  const object = stringAt(root.object, "object");
  if (object === undefined) {
    throw new ApiError("missing_required_field", "object is required.", { param: "object" });
  }
  const changes: DeliveryChange[] = [];
  if (object !== WHATSAPP_OBJECT) return { object, changes };
  arrayAt(root.entry, "entry", true).forEach((entryValue, i) => {
    const entry = objectAt(entryValue, `entry[${i}]`);
    arrayAt(entry.changes, `entry[${i}].changes`, true).forEach((changeValue, j) => {
      const change = parseChange(changeValue, `entry[${i}].changes[${j}]`);
      if (change) changes.push(change);
    });
  });
  return { object, changes };
}

// ---------------------------------------------------------------- ingestion

/** What one delivery did; the HTTP layer logs it and returns the counts. */
export interface IngestReport {
  /** Contacts created. */
  created: number;
  /** Contacts whose stored values changed (a repeated observation changes nothing). */
  updated: number;
  /** Webhook-made contacts merged into the contact of the same person and removed. */
  merged: number;
  /** Changes skipped because an earlier delivery already applied them. */
  duplicates: number;
  /** phone_number_ids of changes that name no account here (acknowledged, not stored). */
  unknown_phone_number_ids: string[];
  /** Identities that could not be moved because another contact with data of its own holds them. */
  conflicts: Array<{ contact_id: string; held_by: string; identity: string }>;
}

/** Wire names of the webhook fields, for error `param`s raised by the contacts rules. */
const WEBHOOK_PARAMS: FieldParams = {
  phone_number: "wa_id",
  business_scoped_user_id: "user_id",
  parent_business_scoped_user_id: "parent_user_id",
  profile_name: "profile.name",
  username: "profile.username",
};

/** Receipts are kept this long: Meta retries a failed delivery for up to 7 days. */
export const RECEIPT_RETENTION_MS = 14 * 24 * 60 * 60 * 1000;

/**
 * Applies a parsed delivery. Run it inside ONE transaction (`db` is that
 * transaction): a failure leaves nothing behind, and a concurrent delivery
 * about the same new person finds the winner's row through the unique
 * identity indexes (the caller re-runs the transaction on a lost race).
 */
export async function ingestDelivery(
  db: Executor,
  dialect: Dialect,
  delivery: Delivery,
  at: number,
): Promise<IngestReport> {
  const report: IngestReport = {
    created: 0,
    updated: 0,
    merged: 0,
    duplicates: 0,
    unknown_phone_number_ids: [],
    conflicts: [],
  };
  for (const change of delivery.changes) {
    const hasWork =
      change.contacts.length > 0 || change.identity_changes.length > 0 || change.preferences.length > 0;
    const account = await findAccountByPhoneNumberId(db, change.phone_number_id);
    if (!account) {
      if (!report.unknown_phone_number_ids.includes(change.phone_number_id)) {
        report.unknown_phone_number_ids.push(change.phone_number_id);
      }
      continue;
    }
    // Statuses and other messages: nothing to record, not even a receipt.
    if (!hasWork) continue;
    if (!(await recordReceipt(db, change.digest, account.id, at))) {
      report.duplicates += 1;
      continue;
    }
    const ctx: Ctx = {
      scope: { db, dialect, organizationId: account.organization_id },
      account,
      at,
      report,
    };
    for (const identityChange of change.identity_changes) await moveIdentity(ctx, identityChange);
    for (const person of change.contacts) {
      await observe(ctx, {
        phone_number: person.wa_id,
        business_scoped_user_id: person.user_id,
        parent_business_scoped_user_id: person.parent_user_id,
        profile_name: person.profile_name,
        username: person.username,
      });
    }
    for (const event of change.preferences) {
      await observe(ctx, {
        phone_number: event.wa_id,
        business_scoped_user_id: event.user_id,
        marketing_preference: { opt_out: event.opt_out, at: event.at },
      });
    }
  }
  return report;
}

/** Forgets receipts past their retention; run now and then, outside deliveries. */
export async function pruneInboundReceipts(db: Executor, at: number): Promise<number> {
  return pruneReceipts(db, at - RECEIPT_RETENTION_MS);
}

interface Ctx {
  scope: Scope;
  account: AccountRow;
  at: number;
  report: IngestReport;
}

function byBsuid(ctx: Ctx, bsuid: string | null | undefined): Promise<repo.ContactRow | undefined> {
  if (!bsuid) return Promise.resolve(undefined);
  return repo.findByIdentity(ctx.scope.db, ctx.account.id, { business_scoped_user_id: bsuid });
}

function byPhone(ctx: Ctx, phone: string | null | undefined): Promise<repo.ContactRow | undefined> {
  if (!phone) return Promise.resolve(undefined);
  return repo.findByIdentity(ctx.scope.db, ctx.account.id, { phone_number: phone });
}

/**
 * Upserts the contact of one observed person: the BSUID decides first, then
 * the phone. A new person is inserted only if absent (the unique indexes
 * arbitrate between concurrent deliveries); a known one gets the observed
 * values, so a repeated observation changes nothing.
 */
async function observe(ctx: Ctx, raw: ContactInput): Promise<void> {
  const input = normalizeInput(raw, WEBHOOK_PARAMS);
  for (let attempt = 0; attempt < 3; attempt++) {
    const bsuidHolder = await liveHolder(ctx, await byBsuid(ctx, input.business_scoped_user_id));
    const phoneHolder = await liveHolder(ctx, await byPhone(ctx, input.phone_number));
    const holderOfBsuid = bsuidHolder?.row;
    const holderOfPhone = phoneHolder?.row;
    if (!holderOfBsuid && !holderOfPhone) {
      try {
        // The one create path (insert if absent on the unique identity indexes).
        await createContact(ctx.scope, ctx.account, input, "inbound", WEBHOOK_PARAMS);
        ctx.report.created += 1;
        return;
      } catch (error) {
        // A concurrent delivery created this person first: update its row instead.
        if (error instanceof ApiError && error.code === "contact_exists") continue;
        throw error;
      }
    }
    let keeper = (holderOfBsuid ?? holderOfPhone)!;
    let next = input;
    if (bsuidHolder?.merged || phoneHolder?.merged) {
      // The person was merged (docs/merge.md): the message lands on the survivor,
      // whose own identity stays; the old identity stays with its tombstone.
      next = { ...input, phone_number: undefined, business_scoped_user_id: undefined };
    }
    if (holderOfBsuid && holderOfPhone && holderOfBsuid.id !== holderOfPhone.id) {
      // Two contacts hold the two halves of one person's identity.
      const merged = await mergePair(ctx, holderOfBsuid, holderOfPhone);
      if (merged) keeper = merged;
      else {
        conflict(ctx, holderOfBsuid.id, holderOfPhone.id, "phone_number");
        next = { ...input, phone_number: undefined };
      }
    }
    await update(ctx, keeper, next);
    return;
  }
  throw new ApiError("service_unavailable", "The contact changed concurrently; the delivery may be retried.");
}

/**
 * `user_changed_number` / `user_changed_user_id`: the contact holding the
 * previous identity takes the new one and keeps its id, labels, metadata and
 * everything else. A system message about a person never seen creates nothing
 * (the next message from them does), and a replay after the move is a no-op.
 * When another contact already holds the new identity, the two become one if
 * either is an untouched webhook contact; otherwise both are kept and the
 * conflict is reported.
 */
async function moveIdentity(ctx: Ctx, change: IdentityChange): Promise<void> {
  const previous = normalizeInput(
    { phone_number: change.previous.wa_id, business_scoped_user_id: change.previous.user_id },
    WEBHOOK_PARAMS,
  );
  const next = normalizeInput(
    {
      phone_number: change.next.wa_id,
      business_scoped_user_id: change.next.user_id,
      parent_business_scoped_user_id: change.next.parent_user_id,
    },
    WEBHOOK_PARAMS,
  );
  let source = await byBsuid(ctx, previous.business_scoped_user_id);
  if (!source) {
    const candidate = await byPhone(ctx, previous.phone_number);
    // Only a contact that is not known as somebody else: the old number may
    // meanwhile belong to another person.
    if (
      candidate &&
      (candidate.business_scoped_user_id === null ||
        candidate.business_scoped_user_id === previous.business_scoped_user_id)
    ) {
      source = candidate;
    }
  }
  if (!source) return;
  let input: ContactInput = next;
  for (const part of ["business_scoped_user_id", "phone_number"] as const) {
    const value = input[part];
    if (!value) continue;
    const holder = part === "phone_number" ? await byPhone(ctx, value) : await byBsuid(ctx, value);
    if (!holder || holder.id === source.id) continue;
    if (await isWebhookShell(ctx, holder)) {
      source = await absorb(ctx, source, holder);
    } else if (await isWebhookShell(ctx, source)) {
      // The business already keeps a contact under the new identity: it becomes the person's contact.
      source = await absorb(ctx, holder, source);
    } else {
      conflict(ctx, source.id, holder.id, part);
      input = { ...input, [part]: undefined };
    }
  }
  await update(ctx, source, input);
}

/** A found contact, or the survivor it was merged into (`merged`: reached through a tombstone). */
async function liveHolder(
  ctx: Ctx,
  row: repo.ContactRow | undefined,
): Promise<{ row: repo.ContactRow; merged: boolean } | undefined> {
  if (!row) return undefined;
  const survivorId = await survivorIdOf(ctx.scope.db, ctx.scope.organizationId, row.id);
  if (survivorId === undefined) return { row, merged: false };
  const survivor = await repo.findContactRow(ctx.scope.db, survivorId);
  return survivor ? { row: survivor, merged: true } : undefined;
}

async function update(ctx: Ctx, row: repo.ContactRow, input: ContactInput): Promise<void> {
  const changes = diffContact(row, input, ctx.at);
  await applyChanges(ctx.scope, row, changes, WEBHOOK_PARAMS);
  if (changes.changed.length > 0) ctx.report.updated += 1;
}

function conflict(ctx: Ctx, contactId: string, heldBy: string, identity: string): void {
  ctx.report.conflicts.push({ contact_id: contactId, held_by: heldBy, identity });
}

/**
 * A contact the webhook created and nobody has touched: no display name,
 * email, metadata or labels. Only such a contact is ever merged away.
 */
async function isWebhookShell(ctx: Ctx, row: repo.ContactRow): Promise<boolean> {
  return (
    row.source === "inbound" &&
    // A merged-away contact is kept for its survivor's undo, never absorbed.
    (await survivorIdOf(ctx.scope.db, ctx.scope.organizationId, row.id)) === undefined &&
    row.display_name === null &&
    row.email === null &&
    row.metadata === "{}" &&
    !(await repo.contactHasLabels(ctx.scope.db, row.id))
  );
}

/**
 * Of two contacts holding halves of one identity, keeps one and removes the
 * other when the other is an untouched webhook shell (the BSUID's holder is
 * kept when both are). Returns the kept row, or undefined when both carry data
 * of their own and stay apart.
 */
async function mergePair(
  ctx: Ctx,
  holderOfBsuid: repo.ContactRow,
  holderOfPhone: repo.ContactRow,
): Promise<repo.ContactRow | undefined> {
  if (await isWebhookShell(ctx, holderOfPhone)) return absorb(ctx, holderOfBsuid, holderOfPhone);
  if (await isWebhookShell(ctx, holderOfBsuid)) return absorb(ctx, holderOfPhone, holderOfBsuid);
  return undefined;
}

/**
 * Deletes `shell` and carries what it knew that `keeper` lacks (profile name,
 * username, parent BSUID, marketing preference); returns the keeper's row as
 * stored now. The caller then gives the keeper the shell's identity.
 */
async function absorb(ctx: Ctx, keeper: repo.ContactRow, shell: repo.ContactRow): Promise<repo.ContactRow> {
  await deleteContact(ctx.scope, shell.id, shell.account_id);
  ctx.report.merged += 1;
  const carried: ContactInput = {};
  for (const field of ["profile_name", "username", "parent_business_scoped_user_id"] as const) {
    if (keeper[field] === null && shell[field] !== null) carried[field] = shell[field];
  }
  const preference: MarketingPreference | undefined =
    shell.marketing_opt_out_at === null
      ? undefined
      : { opt_out: shell.marketing_opt_out === 1, at: shell.marketing_opt_out_at };
  if (preference) carried.marketing_preference = preference;
  const changes = diffContact(keeper, carried, ctx.at);
  await applyChanges(ctx.scope, keeper, changes, WEBHOOK_PARAMS);
  return { ...keeper, ...changes.set };
}
