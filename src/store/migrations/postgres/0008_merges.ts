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

const MATCHES = `
  SELECT id FROM contacts WHERE NEW.email IS NOT NULL AND email IS NOT NULL
    AND organization_id = NEW.organization_id AND lower(email) = lower(NEW.email)
  UNION SELECT id FROM contacts WHERE NEW.phone_number IS NOT NULL
    AND organization_id = NEW.organization_id AND phone_number = NEW.phone_number
  UNION SELECT id FROM contacts WHERE NEW.business_scoped_user_id IS NOT NULL AND business_scoped_user_id IS NOT NULL
    AND organization_id = NEW.organization_id AND business_scoped_user_id = NEW.business_scoped_user_id
  UNION SELECT id FROM contacts WHERE NEW.parent_business_scoped_user_id IS NOT NULL
    AND parent_business_scoped_user_id IS NOT NULL
    AND organization_id = NEW.organization_id AND parent_business_scoped_user_id = NEW.parent_business_scoped_user_id
  UNION SELECT id FROM contacts WHERE NEW.phone_number IS NOT NULL
    AND coalesce(NEW.display_name, NEW.profile_name) IS NOT NULL
    AND phone_number IS NOT NULL AND coalesce(display_name, profile_name) IS NOT NULL
    AND organization_id = NEW.organization_id
    AND ${NAME_KEY} = lower(coalesce(NEW.display_name, NEW.profile_name))
    AND ${TAIL} = right(NEW.phone_number, 7)`;

const CHANGED = [
  "email",
  "phone_number",
  "business_scoped_user_id",
  "parent_business_scoped_user_id",
  "display_name",
  "profile_name",
  "merged_into",
]
  .map((c) => `OLD.${c} IS DISTINCT FROM NEW.${c}`)
  .join(" OR ");

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
  `CREATE FUNCTION phonebook_contacts_duplicates() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF TG_OP = 'UPDATE' THEN
       IF NOT (${CHANGED}) THEN RETURN NULL; END IF;
       DELETE FROM duplicate_pairs WHERE contact_a = NEW.id OR contact_b = NEW.id;
     END IF;
     IF NEW.merged_into IS NOT NULL THEN RETURN NULL; END IF;
     INSERT INTO duplicate_pairs (id, organization_id, contact_a, contact_b, account_a, account_b, detected_at)
     SELECT least(NEW.id, o.id) || '.' || greatest(NEW.id, o.id), NEW.organization_id,
            least(NEW.id, o.id), greatest(NEW.id, o.id),
            CASE WHEN NEW.id < o.id THEN NEW.account_id ELSE o.account_id END,
            CASE WHEN NEW.id < o.id THEN o.account_id ELSE NEW.account_id END,
            NEW.updated_at
     FROM contacts o
     WHERE o.id IN (${MATCHES}) AND o.id <> NEW.id AND o.merged_into IS NULL
     ON CONFLICT DO NOTHING;
     RETURN NULL;
   END $$`,
  `CREATE TRIGGER contacts_duplicates AFTER INSERT OR UPDATE ON contacts
     FOR EACH ROW EXECUTE FUNCTION phonebook_contacts_duplicates()`,
  ...BACKFILL_JOINS.map(
    (
      on,
    ) => `INSERT INTO duplicate_pairs (id, organization_id, contact_a, contact_b, account_a, account_b, detected_at)
     SELECT a.id || '.' || b.id, a.organization_id, a.id, b.id, a.account_id, b.account_id, greatest(a.updated_at, b.updated_at)
     FROM contacts a JOIN contacts b ON b.organization_id = a.organization_id AND ${on} AND b.id > a.id
     ON CONFLICT DO NOTHING`,
  ),
];
