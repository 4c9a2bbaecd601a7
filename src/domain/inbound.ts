import { ApiError } from "../errors.ts";
import { type AccountRow, findAccountByPhoneNumberId } from "../store/repositories/accounts.ts";
import * as repo from "../store/repositories/contacts.ts";
import { pruneReceipts, recordReceipt } from "../store/repositories/inbound-receipts.ts";
import { survivorIdOf } from "../store/repositories/merges.ts";
import type { Executor } from "../store/store.ts";
import {
  applyChanges,
  type ContactInput,
  createContact,
  deleteContact,
  diffContact,
  type MarketingPreference,
  normalizeInput,
  type Scope,
} from "./contacts.ts";
import { recordIdentityChange } from "./identity-history.ts";

/**
 * Contacts observed from WhatsApp (spec §6): what a person's messages tell
 * about them, turned into contact changes through the contacts domain. The
 * webhook surface (src/http/webhooks/) checks Meta's signature, parses the
 * payload and hands its facts here in domain terms; `ingestObservations`
 * runs inside one transaction.
 */

/** A person as observed (values as sent, not yet normalised). */
export interface ObservedPerson {
  phone_number?: string | undefined;
  business_scoped_user_id?: string | undefined;
  parent_business_scoped_user_id?: string | undefined;
  profile_name?: string | undefined;
  username?: string | undefined;
}

/** A person's identity moved (a new number, a new business-scoped user id): from `previous` to `next`. */
export interface IdentityMove {
  previous: { phone_number?: string | undefined; business_scoped_user_id?: string | undefined };
  next: {
    phone_number?: string | undefined;
    business_scoped_user_id?: string | undefined;
    parent_business_scoped_user_id?: string | undefined;
  };
}

/** A person stopped or resumed marketing messages. */
export interface ObservedPreference {
  phone_number?: string | undefined;
  business_scoped_user_id?: string | undefined;
  opt_out: boolean;
  /** ms */
  at: number;
}

/** What one change of a delivery observed, about people of one account. */
export interface ObservedChange {
  /** The account (Meta's phone_number_id) the people wrote to. */
  phone_number_id: string;
  /** What identifies this change among redeliveries (the receipt's key). */
  digest: string;
  identity_moves: IdentityMove[];
  people: ObservedPerson[];
  preferences: ObservedPreference[];
}

/** What one delivery did; the webhook surface logs it and returns the counts. */
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

/** Receipts are kept this long: Meta retries a failed delivery for up to 7 days. */
export const RECEIPT_RETENTION_MS = 14 * 24 * 60 * 60 * 1000;

/**
 * Applies the observations of one delivery. Run it inside ONE transaction (`db` is that
 * transaction): a failure leaves nothing behind, and a concurrent delivery
 * about the same new person finds the winner's row through the unique
 * identity indexes (the caller re-runs the transaction on a lost race).
 */
export async function ingestObservations(
  db: Executor,
  changes: ObservedChange[],
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
  for (const change of changes) {
    const hasWork =
      change.people.length > 0 || change.identity_moves.length > 0 || change.preferences.length > 0;
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
      scope: { db, organizationId: account.organization_id },
      account,
      at,
      report,
    };
    for (const move of change.identity_moves) await moveIdentity(ctx, move);
    for (const person of change.people) await observe(ctx, person);
    for (const event of change.preferences) {
      await observe(ctx, {
        phone_number: event.phone_number,
        business_scoped_user_id: event.business_scoped_user_id,
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
  const input = normalizeInput(raw, ctx.account.default_country);
  for (let attempt = 0; attempt < 3; attempt++) {
    const bsuidHolder = await liveHolder(ctx, await byBsuid(ctx, input.business_scoped_user_id));
    const phoneHolder = await liveHolder(ctx, await byPhone(ctx, input.phone_number));
    const holderOfBsuid = bsuidHolder?.row;
    const holderOfPhone = phoneHolder?.row;
    if (!holderOfBsuid && !holderOfPhone) {
      try {
        // The one create path (insert if absent on the unique identity indexes).
        await createContact(ctx.scope, ctx.account, input, "inbound");
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
 * A person's new number or user id (Meta's `user_changed_number` /
 * `user_changed_user_id`): the contact holding the
 * previous identity takes the new one and keeps its id, labels, metadata and
 * everything else. A system message about a person never seen creates nothing
 * (the next message from them does), and a replay after the move is a no-op.
 * When another contact already holds the new identity, the two become one if
 * either is an untouched webhook contact; otherwise both are kept and the
 * conflict is reported.
 */
async function moveIdentity(ctx: Ctx, move: IdentityMove): Promise<void> {
  const previous = normalizeInput(move.previous, ctx.account.default_country);
  const next = normalizeInput(move.next, ctx.account.default_country);
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
  const moved = await repo.findContactRow(ctx.scope.db, source.id);
  if (moved) await recordIdentityChange(ctx.scope.db, source, moved, ctx.at);
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
  await applyChanges(ctx.scope, row, changes);
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
  await applyChanges(ctx.scope, keeper, changes);
  return { ...keeper, ...changes.set };
}
