import { type Kysely, sql } from "kysely";

/**
 * An account's default country (ISO 3166-1 alpha-2, upper case, or NULL): the
 * country local-format phone numbers (`0812…`) of its contacts are read in
 * (docs/contacts.md, "Phone numbers"). NULL keeps the rule of before: digits
 * without `+` are an international number.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE accounts ADD COLUMN default_country TEXT`.execute(db);
}
