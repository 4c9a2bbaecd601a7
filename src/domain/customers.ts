import { randomUUID } from "node:crypto";
import { ApiError, notFound } from "../errors.ts";
import { uniqueViolation } from "../store/driver-errors.ts";
import * as contactsRepo from "../store/repositories/contacts.ts";
import * as repo from "../store/repositories/customers.ts";
import type { Executor } from "../store/store.ts";
import { now } from "./clock.ts";
import { hasControlCharacters, requireName } from "./contact-fields.ts";
import type { Scope } from "./contacts.ts";
import { emitEvents, updateEvents } from "./events.ts";
import { type Bound, type KeysetPage, walkKeyset } from "./pagination.ts";

export type { CustomerRow } from "../store/repositories/customers.ts";

/**
 * Customers: the tenants of a Kapso-style integration. Ids are UUIDs, because
 * Kapso's SDK rejects any other `customerId` before it sends a request;
 * `external_customer_id` (the caller's own id) is unique per organisation.
 */
export interface CustomerInput {
  name?: string | undefined;
  external_customer_id?: string | null | undefined;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const EXTERNAL_ID_MAX = 256;

export function isUuid(value: string): boolean {
  return UUID_RE.test(value);
}

/** A customer id as stored (lower case); anything but a UUID is 400 `invalid_field_value`. */
export function requireUuid(value: string, param: string): string {
  if (!isUuid(value)) {
    throw new ApiError("invalid_field_value", `${param} must be a UUID.`, { param });
  }
  return value.toLowerCase();
}

export function requireExternalId(value: string, param = "external_customer_id"): string {
  const id = value.trim();
  if (id.length < 1 || id.length > EXTERNAL_ID_MAX || hasControlCharacters(id)) {
    throw new ApiError(
      "invalid_field_value",
      `${param} must be 1 to ${EXTERNAL_ID_MAX} characters without control characters.`,
      { param },
    );
  }
  return id;
}

function normalize(input: CustomerInput): CustomerInput {
  const out: CustomerInput = {};
  if (input.name !== undefined) out.name = requireName(input.name, "name");
  if (input.external_customer_id !== undefined) {
    out.external_customer_id =
      input.external_customer_id === null ? null : requireExternalId(input.external_customer_id);
  }
  return out;
}

async function conflictIfTaken(db: Executor, organizationId: string, externalId: string, self?: string) {
  const holder = await repo.findCustomerByExternalId(db, organizationId, externalId);
  if (holder && holder.id !== self) throw customerExists(holder.id);
}

function customerExists(existingId: string): ApiError {
  return new ApiError("customer_exists", "A customer with this external_customer_id already exists.", {
    param: "external_customer_id",
    extra: { existing_id: existingId },
  });
}

/** The organisation's customer with this id; a malformed id is 400, another organisation's 404. */
export async function getCustomer(
  db: Executor,
  organizationId: string,
  id: string,
  param = "id",
): Promise<repo.CustomerRow> {
  const row = await repo.findCustomer(db, organizationId, requireUuid(id, param));
  if (!row) throw notFound("customer", param);
  return row;
}

export async function createCustomer(
  db: Executor,
  organizationId: string,
  raw: CustomerInput,
): Promise<repo.CustomerRow> {
  const input = normalize(raw);
  if (input.name === undefined) {
    throw new ApiError("missing_required_field", "name is required.", { param: "name" });
  }
  const externalId = input.external_customer_id ?? null;
  if (externalId !== null) await conflictIfTaken(db, organizationId, externalId);
  const at = now();
  const row: repo.CustomerRow = {
    id: randomUUID(),
    organization_id: organizationId,
    name: input.name,
    external_customer_id: externalId,
    created_at: at,
    updated_at: at,
  };
  if (!(await repo.insertCustomerIfAbsent(db, row))) {
    // A concurrent create took the external id between the check and the insert.
    const holder =
      externalId === null ? undefined : await repo.findCustomerByExternalId(db, organizationId, externalId);
    if (holder) throw customerExists(holder.id);
    throw new ApiError("internal_error", "Could not create the customer; try again.");
  }
  return row;
}

/** Writes only what changes; a no-op leaves `updated_at` alone. */
export async function updateCustomer(
  db: Executor,
  organizationId: string,
  id: string,
  raw: CustomerInput,
): Promise<repo.CustomerRow> {
  const input = normalize(raw);
  const current = await getCustomer(db, organizationId, id);
  const patch: Partial<repo.CustomerRow> = {};
  if (input.name !== undefined && input.name !== current.name) patch.name = input.name;
  if (
    input.external_customer_id !== undefined &&
    input.external_customer_id !== current.external_customer_id
  ) {
    if (input.external_customer_id !== null) {
      await conflictIfTaken(db, organizationId, input.external_customer_id, current.id);
    }
    patch.external_customer_id = input.external_customer_id;
  }
  if (Object.keys(patch).length === 0) return current;
  patch.updated_at = Math.max(now(), current.updated_at + 1);
  try {
    await repo.updateCustomerRow(db, current.id, patch);
  } catch (error) {
    if (uniqueViolation(error)) {
      throw new ApiError("customer_exists", "A customer with this external_customer_id already exists.", {
        param: "external_customer_id",
        cause: error,
      });
    }
    throw error;
  }
  return { ...current, ...patch };
}

/**
 * Deletes a customer; its contacts stay, unlinked: each is changed
 * (`updated_at` moves) and gets a `contact.updated` naming `customer_id`.
 */
export async function deleteCustomer(scope: Scope, id: string): Promise<void> {
  const { db, organizationId } = scope;
  const current = await getCustomer(db, organizationId, id);
  const unlinked = await contactsRepo.unlinkCustomer(db, current.id, now());
  if (!(await repo.deleteCustomerRow(db, organizationId, current.id))) throw notFound("customer", "id");
  await emitEvents(
    scope,
    unlinked.flatMap((contactId) => updateEvents(contactId, ["customer_id"], undefined)),
  );
}

export async function listCustomers(
  db: Executor,
  filters: repo.CustomerFilters,
  bound: Bound,
  limit: number,
): Promise<KeysetPage<repo.CustomerRow>> {
  return walkKeyset(
    bound,
    limit,
    (b, n) => repo.listCustomerRows(db, filters, b, n),
    (b) => repo.customersExist(db, filters, b),
  );
}
