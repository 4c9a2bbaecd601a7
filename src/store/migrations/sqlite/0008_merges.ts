import { type Kysely, sql } from "kysely";

/**
 * Merging duplicate contacts (docs/merge.md):
 * - a merged-away contact stays in `contacts` as a tombstone: `merged_into`
 *   names its survivor and `merge_id` the merge. It keeps its identity (the
 *   unique (account, phone) and (account, BSUID) indexes keep holding it), so
 *   lookups, creates and Meta deliveries for that identity find the survivor;
 * - `merges` records each merge with what undo needs;
 * - `duplicate_pairs` holds candidate pairs, maintained by triggers on every
 *   write through indexed keys (lower(email), phone, BSUID, parent BSUID,
 *   name + last 7 digits of the phone), so listing them reads an index.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of STATEMENTS) await sql.raw(statement).execute(db);
}

const NAME_KEY = "lower(coalesce(display_name, profile_name))";
const TAIL = "substr(phone_number, -7)";

/** The live contacts of n's organisation that match n on one of the duplicate keys. */
export const DUPLICATE_MATCHES = `
  SELECT id FROM contacts WHERE new.email IS NOT NULL AND email IS NOT NULL
    AND organization_id = new.organization_id AND lower(email) = lower(new.email)
  UNION SELECT id FROM contacts WHERE new.phone_number IS NOT NULL
    AND organization_id = new.organization_id AND phone_number = new.phone_number
  UNION SELECT id FROM contacts WHERE new.business_scoped_user_id IS NOT NULL AND business_scoped_user_id IS NOT NULL
    AND organization_id = new.organization_id AND business_scoped_user_id = new.business_scoped_user_id
  UNION SELECT id FROM contacts WHERE new.parent_business_scoped_user_id IS NOT NULL
    AND parent_business_scoped_user_id IS NOT NULL
    AND organization_id = new.organization_id AND parent_business_scoped_user_id = new.parent_business_scoped_user_id
  UNION SELECT id FROM contacts WHERE new.phone_number IS NOT NULL
    AND coalesce(new.display_name, new.profile_name) IS NOT NULL
    AND phone_number IS NOT NULL AND coalesce(display_name, profile_name) IS NOT NULL
    AND organization_id = new.organization_id
    AND ${NAME_KEY} = lower(coalesce(new.display_name, new.profile_name))
    AND ${TAIL} = substr(new.phone_number, -7)`;

const INSERT_PAIRS = `
  INSERT OR IGNORE INTO duplicate_pairs (id, organization_id, contact_a, contact_b, account_a, account_b, detected_at)
  SELECT min(new.id, o.id) || '.' || max(new.id, o.id), new.organization_id,
         min(new.id, o.id), max(new.id, o.id),
         CASE WHEN new.id < o.id THEN new.account_id ELSE o.account_id END,
         CASE WHEN new.id < o.id THEN o.account_id ELSE new.account_id END,
         new.updated_at
  FROM contacts o
  WHERE o.id IN (${DUPLICATE_MATCHES}) AND o.id <> new.id AND o.merged_into IS NULL AND new.merged_into IS NULL;`;

const CHANGED = [
  "email",
  "phone_number",
  "business_scoped_user_id",
  "parent_business_scoped_user_id",
  "display_name",
  "profile_name",
  "merged_into",
]
  .map((c) => `old.${c} IS NOT new.${c}`)
  .join(" OR ");

const BACKFILL_JOINS = [
  "a.email IS NOT NULL AND b.email IS NOT NULL AND lower(b.email) = lower(a.email)",
  "a.phone_number IS NOT NULL AND b.phone_number = a.phone_number",
  "a.business_scoped_user_id IS NOT NULL AND b.business_scoped_user_id IS NOT NULL AND b.business_scoped_user_id = a.business_scoped_user_id",
  "a.parent_business_scoped_user_id IS NOT NULL AND b.parent_business_scoped_user_id IS NOT NULL AND b.parent_business_scoped_user_id = a.parent_business_scoped_user_id",
  `a.phone_number IS NOT NULL AND coalesce(a.display_name, a.profile_name) IS NOT NULL
     AND b.phone_number IS NOT NULL AND coalesce(b.display_name, b.profile_name) IS NOT NULL
     AND lower(coalesce(b.display_name, b.profile_name)) = lower(coalesce(a.display_name, a.profile_name))
     AND substr(b.phone_number, -7) = substr(a.phone_number, -7)`,
];

const STATEMENTS = [
  `ALTER TABLE contacts ADD COLUMN merged_into TEXT REFERENCES contacts(id) ON DELETE CASCADE`,
  `ALTER TABLE contacts ADD COLUMN merge_id TEXT`,
  `CREATE INDEX contacts_merged_into ON contacts (merged_into) WHERE merged_into IS NOT NULL`,
  `CREATE TABLE merges (
     id TEXT PRIMARY KEY,
     organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
     survivor_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
     merged_ids TEXT NOT NULL,
     prefer TEXT NOT NULL,
     survivor_before TEXT NOT NULL,
     survivor_after TEXT NOT NULL,
     labels_added TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     undo_until INTEGER NOT NULL,
     undone_at INTEGER
   )`,
  `CREATE INDEX merges_survivor ON merges (survivor_id, created_at DESC, id DESC)`,
  `CREATE TABLE duplicate_pairs (
     id TEXT PRIMARY KEY,
     organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
     contact_a TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
     contact_b TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
     account_a TEXT NOT NULL,
     account_b TEXT NOT NULL,
     detected_at INTEGER NOT NULL
   )`,
  `CREATE INDEX duplicate_pairs_a ON duplicate_pairs (contact_a)`,
  `CREATE INDEX duplicate_pairs_b ON duplicate_pairs (contact_b)`,
  `CREATE INDEX duplicate_pairs_organization ON duplicate_pairs (organization_id, detected_at DESC, id DESC)`,
  `CREATE INDEX duplicate_pairs_account_a ON duplicate_pairs (account_a, detected_at DESC, id DESC)`,
  `CREATE INDEX duplicate_pairs_account_b ON duplicate_pairs (account_b, detected_at DESC, id DESC)`,
  // The duplicate keys (phone, BSUID and parent BSUID are indexed per organisation already).
  `CREATE INDEX contacts_organization_email ON contacts (organization_id, lower(email)) WHERE email IS NOT NULL`,
  `CREATE INDEX contacts_organization_name_tail ON contacts (organization_id, ${NAME_KEY}, ${TAIL})
     WHERE phone_number IS NOT NULL AND coalesce(display_name, profile_name) IS NOT NULL`,
  `CREATE TRIGGER contacts_duplicates_insert AFTER INSERT ON contacts WHEN new.merged_into IS NULL BEGIN
     ${INSERT_PAIRS}
   END`,
  `CREATE TRIGGER contacts_duplicates_update AFTER UPDATE ON contacts WHEN ${CHANGED} BEGIN
     DELETE FROM duplicate_pairs WHERE contact_a = new.id OR contact_b = new.id;
     ${INSERT_PAIRS}
   END`,
  // Contacts stored before this migration: every pair found once, one key at a time through its index.
  ...BACKFILL_JOINS.map(
    (
      on,
    ) => `INSERT OR IGNORE INTO duplicate_pairs (id, organization_id, contact_a, contact_b, account_a, account_b, detected_at)
     SELECT a.id || '.' || b.id, a.organization_id, a.id, b.id, a.account_id, b.account_id, max(a.updated_at, b.updated_at)
     FROM contacts a JOIN contacts b ON b.organization_id = a.organization_id AND ${on} AND b.id > a.id`,
  ),
];
