import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of STATEMENTS) await sql.raw(statement).execute(db);
}

// Customers (Kapso's platform surface): UUID ids (kept as TEXT, lower case, so
// that a malformed id can never become a cast error), an optional external id
// unique per organisation; contacts link to one by `customer_id`.
const STATEMENTS = [
  `CREATE TABLE customers (
     id TEXT COLLATE "C" PRIMARY KEY,
     organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
     name TEXT NOT NULL,
     external_customer_id TEXT,
     created_at BIGINT NOT NULL,
     updated_at BIGINT NOT NULL
   )`,
  `CREATE UNIQUE INDEX customers_organization_external ON customers (organization_id, external_customer_id)
     WHERE external_customer_id IS NOT NULL`,
  `CREATE INDEX customers_organization_created ON customers (organization_id, created_at DESC, id DESC)`,
  `ALTER TABLE contacts ADD COLUMN customer_id TEXT COLLATE "C" REFERENCES customers(id) ON DELETE SET NULL`,
  `CREATE INDEX contacts_customer ON contacts (customer_id, created_at DESC, id DESC)`,
  // Identifier lookups across an organisation's accounts (platform surface).
  `CREATE INDEX contacts_organization_bsuid ON contacts (organization_id, business_scoped_user_id)
     WHERE business_scoped_user_id IS NOT NULL`,
  `CREATE INDEX contacts_organization_parent_bsuid ON contacts (organization_id, parent_business_scoped_user_id)
     WHERE parent_business_scoped_user_id IS NOT NULL`,
];
