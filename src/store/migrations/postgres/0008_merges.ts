import { type Kysely, sql } from "kysely";

/**
 * Merging duplicate contacts (docs/merge.md); the same tables as on SQLite:
 * tombstones in `contacts` (`merged_into`, `merge_id`), `merges`, and
 * `duplicate_pairs` maintained by a trigger through indexed keys.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of STATEMENTS) await sql.raw(statement).execute(db);
}

const NAME_KEY = "lower(coalesce(display_name, profile_name))";
const TAIL = "right(phone_number, 7)";

/**
 * The triggers are per statement, over its transition table (`changed`: the
 * rows a statement inserted, or updated in a key column): one set-based
 * INSERT per key, each a join on that key's index, so a 1,000-row batch
 * costs five joins rather than 5,000 lookups. Rows of one statement that
 * match each other are found too (the AFTER trigger sees them all in
 * `contacts`).
 */
const BRANCHES: Array<[guard: string, match: string]> = [
  ["n.email IS NOT NULL", "o.email IS NOT NULL AND lower(o.email) = lower(n.email)"],
  ["n.phone_number IS NOT NULL", "o.phone_number = n.phone_number"],
  [
    "n.business_scoped_user_id IS NOT NULL",
    "o.business_scoped_user_id IS NOT NULL AND o.business_scoped_user_id = n.business_scoped_user_id",
  ],
  [
    "n.parent_business_scoped_user_id IS NOT NULL",
    "o.parent_business_scoped_user_id IS NOT NULL AND o.parent_business_scoped_user_id = n.parent_business_scoped_user_id",
  ],
  [
    "n.phone_number IS NOT NULL AND coalesce(n.display_name, n.profile_name) IS NOT NULL",
    `o.phone_number IS NOT NULL AND coalesce(o.display_name, o.profile_name) IS NOT NULL
       AND lower(coalesce(o.display_name, o.profile_name)) = lower(coalesce(n.display_name, n.profile_name))
       AND right(o.phone_number, 7) = right(n.phone_number, 7)`,
  ],
];

const insertPairs = (from: string) =>
  BRANCHES.map(
    ([guard, match]) => `
     INSERT INTO duplicate_pairs (id, organization_id, contact_a, contact_b, account_a, account_b, detected_at)
     SELECT least(n.id, o.id) || '.' || greatest(n.id, o.id), n.organization_id,
            least(n.id, o.id), greatest(n.id, o.id),
            CASE WHEN n.id < o.id THEN n.account_id ELSE o.account_id END,
            CASE WHEN n.id < o.id THEN o.account_id ELSE n.account_id END,
            n.updated_at
     FROM ${from} n JOIN contacts o
       ON o.organization_id = n.organization_id AND ${match} AND o.id <> n.id AND o.merged_into IS NULL
     WHERE n.merged_into IS NULL AND ${guard}
     ON CONFLICT DO NOTHING;`,
  ).join("");

const CHANGED = [
  "email",
  "phone_number",
  "business_scoped_user_id",
  "parent_business_scoped_user_id",
  "display_name",
  "profile_name",
  "merged_into",
]
  .map((c) => `uo.${c} IS DISTINCT FROM un.${c}`)
  .join(" OR ");

/** The rows an UPDATE statement changed in a key column (or in merged_into). */
const CHANGED_ROWS = `(SELECT un.* FROM updated_new un JOIN updated_old uo ON uo.id = un.id WHERE ${CHANGED})`;

const BACKFILL_JOINS = [
  "a.email IS NOT NULL AND b.email IS NOT NULL AND lower(b.email) = lower(a.email)",
  "a.phone_number IS NOT NULL AND b.phone_number = a.phone_number",
  "a.business_scoped_user_id IS NOT NULL AND b.business_scoped_user_id IS NOT NULL AND b.business_scoped_user_id = a.business_scoped_user_id",
  "a.parent_business_scoped_user_id IS NOT NULL AND b.parent_business_scoped_user_id IS NOT NULL AND b.parent_business_scoped_user_id = a.parent_business_scoped_user_id",
  `a.phone_number IS NOT NULL AND coalesce(a.display_name, a.profile_name) IS NOT NULL
     AND b.phone_number IS NOT NULL AND coalesce(b.display_name, b.profile_name) IS NOT NULL
     AND lower(coalesce(b.display_name, b.profile_name)) = lower(coalesce(a.display_name, a.profile_name))
     AND right(b.phone_number, 7) = right(a.phone_number, 7)`,
];

const STATEMENTS = [
  `ALTER TABLE contacts ADD COLUMN merged_into TEXT COLLATE "C" REFERENCES contacts(id) ON DELETE CASCADE`,
  `ALTER TABLE contacts ADD COLUMN merge_id TEXT COLLATE "C"`,
  `CREATE INDEX contacts_merged_into ON contacts (merged_into) WHERE merged_into IS NOT NULL`,
  `CREATE TABLE merges (
     id TEXT COLLATE "C" PRIMARY KEY,
     organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
     survivor_id TEXT COLLATE "C" NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
     merged_ids TEXT NOT NULL,
     prefer TEXT NOT NULL,
     survivor_before TEXT NOT NULL,
     survivor_after TEXT NOT NULL,
     labels_added TEXT NOT NULL,
     created_at BIGINT NOT NULL,
     undo_until BIGINT NOT NULL,
     undone_at BIGINT
   )`,
  `CREATE INDEX merges_survivor ON merges (survivor_id, created_at DESC, id DESC)`,
  `CREATE TABLE duplicate_pairs (
     id TEXT COLLATE "C" PRIMARY KEY,
     organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
     contact_a TEXT COLLATE "C" NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
     contact_b TEXT COLLATE "C" NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
     account_a TEXT COLLATE "C" NOT NULL,
     account_b TEXT COLLATE "C" NOT NULL,
     detected_at BIGINT NOT NULL
   )`,
  `CREATE INDEX duplicate_pairs_a ON duplicate_pairs (contact_a)`,
  `CREATE INDEX duplicate_pairs_b ON duplicate_pairs (contact_b)`,
  `CREATE INDEX duplicate_pairs_organization ON duplicate_pairs (organization_id, detected_at DESC, id DESC)`,
  `CREATE INDEX duplicate_pairs_account_a ON duplicate_pairs (account_a, detected_at DESC, id DESC)`,
  `CREATE INDEX duplicate_pairs_account_b ON duplicate_pairs (account_b, detected_at DESC, id DESC)`,
  `CREATE INDEX contacts_organization_email ON contacts (organization_id, lower(email)) WHERE email IS NOT NULL`,
  `CREATE INDEX contacts_organization_name_tail ON contacts (organization_id, ${NAME_KEY}, ${TAIL})
     WHERE phone_number IS NOT NULL AND coalesce(display_name, profile_name) IS NOT NULL`,
  `CREATE FUNCTION phonebook_contacts_duplicates_inserted() RETURNS trigger LANGUAGE plpgsql
   SET enable_seqscan = off SET plan_cache_mode = force_custom_plan AS $$
   BEGIN
     ${insertPairs("inserted")}
     RETURN NULL;
   END $$`,
  `CREATE FUNCTION phonebook_contacts_duplicates_updated() RETURNS trigger LANGUAGE plpgsql
   SET enable_seqscan = off SET plan_cache_mode = force_custom_plan AS $$
   BEGIN
     DELETE FROM duplicate_pairs d USING ${CHANGED_ROWS} c WHERE d.contact_a = c.id;
     DELETE FROM duplicate_pairs d USING ${CHANGED_ROWS} c WHERE d.contact_b = c.id;
     ${insertPairs(CHANGED_ROWS)}
     RETURN NULL;
   END $$`,
  `CREATE TRIGGER contacts_duplicates_insert AFTER INSERT ON contacts
     REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION phonebook_contacts_duplicates_inserted()`,
  `CREATE TRIGGER contacts_duplicates_update AFTER UPDATE ON contacts
     REFERENCING OLD TABLE AS updated_old NEW TABLE AS updated_new
     FOR EACH STATEMENT EXECUTE FUNCTION phonebook_contacts_duplicates_updated()`,
  ...BACKFILL_JOINS.map(
    (
      on,
    ) => `INSERT INTO duplicate_pairs (id, organization_id, contact_a, contact_b, account_a, account_b, detected_at)
     SELECT a.id || '.' || b.id, a.organization_id, a.id, b.id, a.account_id, b.account_id, greatest(a.updated_at, b.updated_at)
     FROM contacts a JOIN contacts b ON b.organization_id = a.organization_id AND ${on} AND b.id > a.id
     ON CONFLICT DO NOTHING`,
  ),
];
