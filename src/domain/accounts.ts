import { ApiError, notFound } from "../errors.ts";
import { newId } from "../ids.ts";
import { uniqueViolation } from "../store/driver-errors.ts";
import * as accounts from "../store/repositories/accounts.ts";
import { type Erased, eraseAccount } from "../store/repositories/erasure.ts";
import type { AccountStatus } from "../store/schema.ts";
import type { Executor } from "../store/store.ts";
import { now } from "./clock.ts";
import { requireOrganization } from "./organizations.ts";
import { requireCountry, requirePhone } from "./phone.ts";

/** What Meta's phone_number_id looks like: 6 to 20 digits. */
export const PHONE_NUMBER_ID_PATTERN = "^\\d{6,20}$";

export async function createAccount(
  db: Executor,
  organizationId: string,
  input: {
    phone_number_id: string;
    phone_number: string;
    name?: string | null | undefined;
    status?: AccountStatus | undefined;
    /** ISO 3166-1 alpha-2: local-format numbers of its contacts (and its own phone_number) are read in it. */
    default_country?: string | null | undefined;
  },
): Promise<accounts.AccountRow> {
  await requireOrganization(db, organizationId);
  const country = input.default_country == null ? null : requireCountry(input.default_country);
  const phone = requirePhone(input.phone_number, "phone_number", country);
  const at = now();
  const row: accounts.AccountRow = {
    id: newId("wba"),
    organization_id: organizationId,
    phone_number_id: input.phone_number_id,
    phone_number: phone,
    name: input.name ?? null,
    status: input.status ?? "connected",
    default_country: country,
    created_at: at,
    updated_at: at,
  };
  try {
    await accounts.insertAccount(db, row);
  } catch (error) {
    if (uniqueViolation(error)) {
      throw new ApiError("account_exists", "An account with this phone_number_id already exists.", {
        param: "phone_number_id",
      });
    }
    throw error;
  }
  return row;
}

export async function updateAccount(
  db: Executor,
  id: string,
  input: {
    name?: string | null | undefined;
    status?: AccountStatus | undefined;
    /** null clears it (digits without `+` are then international only). */
    default_country?: string | null | undefined;
  },
): Promise<accounts.AccountRow> {
  const country =
    input.default_country == null ? input.default_country : requireCountry(input.default_country);
  const account = id.startsWith("wba_")
    ? await accounts.findAccount(db, id)
    : await accounts.findAccountByPhoneNumberId(db, id);
  if (!account) throw notFound("account", "account_id");
  const patch: Partial<accounts.AccountRow> = {};
  if (input.name !== undefined && input.name !== account.name) patch.name = input.name;
  if (input.status !== undefined && input.status !== account.status) patch.status = input.status;
  if (country !== undefined && country !== account.default_country) patch.default_country = country;
  if (Object.keys(patch).length === 0) return account;
  patch.updated_at = now();
  return (await accounts.updateAccount(db, account.id, patch)) ?? account;
}

/** An account of this organisation by Meta's phone_number_id; a foreign or unknown one is 404. */
export async function requireAccountByPhoneNumberId(
  db: Executor,
  organizationId: string,
  phoneNumberId: string,
  param = "phone_number_id",
): Promise<accounts.AccountRow> {
  const account = await accounts.findAccountByPhoneNumberId(db, phoneNumberId);
  if (!account || account.organization_id !== organizationId) throw notFound("account", param);
  return account;
}

/**
 * Disconnects and erases an account: the account, its contacts, its imports
 * (docs/deploying.md, "Removing data"). The caller owns the transaction.
 * `id` is the account id (`wba_…`) or its phone_number_id.
 */
export async function deleteAccount(
  tx: Executor,
  id: string,
): Promise<{ account: accounts.AccountRow; erased: Erased }> {
  const account = id.startsWith("wba_")
    ? await accounts.findAccount(tx, id)
    : await accounts.findAccountByPhoneNumberId(tx, id);
  if (!account) throw notFound("account", "account_id");
  return { account, erased: await eraseAccount(tx, account.organization_id, account.id) };
}
