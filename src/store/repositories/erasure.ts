import type { Executor } from "../store.ts";

/** What an erasure removed, by kind (the admin API and the CLI report it). */
export interface Erased {
  accounts: number;
  contacts: number;
  labels: number;
  customers: number;
  api_keys: number;
  imports: number;
  idempotency_keys: number;
}

async function count(
  db: Executor,
  table: "accounts" | "contacts" | "labels" | "customers" | "api_keys" | "imports" | "idempotency_keys",
  column: "organization_id" | "account_id",
  value: string,
): Promise<number> {
  // Every counted table has organization_id; those counted by account have account_id.
  const row = await db
    .selectFrom(table as "contacts")
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .where(column, "=", value)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * Deletes one account of an organisation and everything that hangs off it:
 * its contacts (with their labels' attachments), imports (with their errors
 * and the uploaded file's pieces) and inbound receipts. The rows go by the
 * foreign keys' ON DELETE CASCADE; the uploaded pieces, which have no key, first.
 */
export async function eraseAccount(tx: Executor, organizationId: string, accountId: string): Promise<Erased> {
  const erased: Erased = {
    accounts: 1,
    contacts: await count(tx, "contacts", "account_id", accountId),
    labels: 0,
    customers: 0,
    api_keys: 0,
    imports: await count(tx, "imports", "account_id", accountId),
    idempotency_keys: 0,
  };
  await tx
    .deleteFrom("import_chunks")
    .where("upload_id", "in", (eb) =>
      eb
        .selectFrom("imports")
        .select("id")
        .where("organization_id", "=", organizationId)
        .where("account_id", "=", accountId),
    )
    .execute();
  await tx
    .deleteFrom("accounts")
    .where("organization_id", "=", organizationId)
    .where("id", "=", accountId)
    .execute();
  return erased;
}

/**
 * Deletes an organisation and all its data: API keys, accounts (and, through
 * them, contacts, imports, receipts), labels, customers and idempotency records.
 */
export async function eraseOrganization(tx: Executor, organizationId: string): Promise<Erased> {
  const erased: Erased = {
    accounts: await count(tx, "accounts", "organization_id", organizationId),
    contacts: await count(tx, "contacts", "organization_id", organizationId),
    labels: await count(tx, "labels", "organization_id", organizationId),
    customers: await count(tx, "customers", "organization_id", organizationId),
    api_keys: await count(tx, "api_keys", "organization_id", organizationId),
    imports: await count(tx, "imports", "organization_id", organizationId),
    idempotency_keys: await count(tx, "idempotency_keys", "organization_id", organizationId),
  };
  await tx
    .deleteFrom("import_chunks")
    .where("upload_id", "in", (eb) =>
      eb.selectFrom("imports").select("id").where("organization_id", "=", organizationId),
    )
    .execute();
  await tx.deleteFrom("organizations").where("id", "=", organizationId).execute();
  return erased;
}
