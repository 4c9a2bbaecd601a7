import {
  CompiledQuery,
  type Expression,
  type ExpressionBuilder,
  type Insertable,
  type Selectable,
  type SqlBool,
  sql,
  type Updateable,
} from "kysely";
import type { ContactsTable, Database } from "../schema.ts";
import type { Dialect, Executor } from "../store.ts";

export type ContactRow = Omit<Selectable<ContactsTable>, "seq">;

export interface LabelRef {
  id: string;
  name: string;
  color: string;
}

/** A contact with what every representation shows besides its own columns. */
export interface ContactView extends ContactRow {
  account_phone_number: string;
  account_phone_number_id: string;
  labels: LabelRef[];
}

export interface ContactFilters {
  organizationId: string;
  accountId?: string | undefined;
  phone?: string | undefined;
  /** Already reduced by `searchTermOf`. */
  searchTerm?: string | undefined;
  labelId?: string | undefined;
  createdAfter?: number | undefined;
  createdBefore?: number | undefined;
  updatedAfter?: number | undefined;
  marketingOptOut?: boolean | undefined;
  businessScopedUserId?: string | undefined;
}

export interface Keyset {
  created_at: number;
  id: string;
}

const CONTACT_COLUMNS = [
  "id",
  "organization_id",
  "account_id",
  "phone_number",
  "business_scoped_user_id",
  "parent_business_scoped_user_id",
  "username",
  "profile_name",
  "display_name",
  "email",
  "metadata",
  "source",
  "marketing_opt_out",
  "marketing_opt_out_at",
  "search_text",
  "created_at",
  "updated_at",
] as const satisfies ReadonlyArray<keyof ContactRow>;

/** Rows walked in order before the search falls back to its index (see docs/search.md). */
export const SEARCH_WALK_BUDGET = 2000;

type ContactsEb = ExpressionBuilder<Database, "contacts">;

/**
 * How a query lets SQLite pick its index. Without statistics (no ANALYZE has
 * run), SQLite prefers walking (organization_id, created_at, id) in order
 * over any index that would need a sort, even when another index finds the
 * few rows at once: a phone filter then reads a whole organisation. So where
 * we know better, the other terms are made opaque to the planner with a unary
 * `+` (SQLite's documented way to disqualify a term from index use):
 * - "ordered": the default; the ordered index drives (lists, the search walk).
 * - "unordered": the ORDER BY is opaque, so an equality index on an identity
 *   (phone, BSUID: at most one row per account) drives, then a sort of a few rows.
 * - "rowid": every filter and the ORDER BY are opaque, so only the FTS rowid
 *   list can drive (the search fallback: rare terms, few hits, then a sort).
 * PostgreSQL plans from its statistics and gets the plain terms.
 */
type PlanHint = "ordered" | "unordered" | "rowid";

function opaque(dialect: Dialect, hint: PlanHint, column: string, forOrder: boolean) {
  const hide = dialect === "sqlite" && (hint === "rowid" || (hint === "unordered" && forOrder));
  return hide ? sql`+${sql.ref(column)}` : sql.ref(column);
}

function filterConditions(
  eb: ContactsEb,
  f: ContactFilters,
  after: Keyset | undefined,
  dialect: Dialect,
  hint: PlanHint = "ordered",
): Expression<SqlBool> {
  const col = (name: string) => opaque(dialect, hint, name, false);
  const c: Expression<SqlBool>[] = [eb(col("contacts.organization_id"), "=", f.organizationId)];
  if (f.accountId !== undefined) c.push(eb(col("contacts.account_id"), "=", f.accountId));
  if (f.phone !== undefined) c.push(eb(col("contacts.phone_number"), "=", f.phone));
  if (f.businessScopedUserId !== undefined)
    c.push(eb(col("contacts.business_scoped_user_id"), "=", f.businessScopedUserId));
  if (f.createdAfter !== undefined) c.push(eb(col("contacts.created_at"), ">", f.createdAfter));
  if (f.createdBefore !== undefined) c.push(eb(col("contacts.created_at"), "<", f.createdBefore));
  if (f.updatedAfter !== undefined) c.push(eb(col("contacts.updated_at"), ">", f.updatedAfter));
  if (f.marketingOptOut !== undefined)
    c.push(eb(col("contacts.marketing_opt_out"), "=", f.marketingOptOut ? 1 : 0));
  if (f.labelId !== undefined) {
    const labelId = f.labelId;
    c.push(
      eb.exists(
        eb
          .selectFrom("contact_labels")
          .select("contact_labels.contact_id")
          .whereRef("contact_labels.contact_id", "=", "contacts.id")
          .where("contact_labels.label_id", "=", labelId),
      ),
    );
  }
  if (after) {
    c.push(
      eb(eb.tuple(col("contacts.created_at"), col("contacts.id")), "<", eb.tuple(after.created_at, after.id)),
    );
  }
  return eb.and(c);
}

/** Exact substring test on the lower-cased search text (no index). */
function substringCondition(dialect: Dialect, term: string) {
  return dialect === "sqlite"
    ? sql<SqlBool>`instr(contacts.search_text, ${term}) > 0`
    : sql<SqlBool>`strpos(contacts.search_text, ${term}) > 0`;
}

/** An FTS5 phrase matching the term literally. */
function phraseOf(term: string): string {
  return `"${term.replaceAll('"', '""')}"`;
}

/** A LIKE pattern matching the term as a substring. */
function patternOf(term: string): string {
  return `%${term.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
}

/**
 * Substring test that the trigram index can answer (terms of 3+ characters,
 * `short` otherwise), plus the exact test.
 */
function indexedSearchCondition(dialect: Dialect, term: string, short = term.length < 3) {
  if (short) return substringCondition(dialect, term);
  if (dialect === "sqlite") {
    return sql<SqlBool>`contacts.seq IN (SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH ${phraseOf(term)}) AND instr(contacts.search_text, ${term}) > 0`;
  }
  return sql<SqlBool>`contacts.search_text LIKE ${patternOf(term)}`;
}

function labelsJson(dialect: Dialect) {
  return dialect === "sqlite"
    ? sql<string>`(SELECT json_group_array(json_object('id', l.id, 'name', l.name, 'color', l.color))
         FROM (SELECT l.id, l.name, l.color FROM contact_labels cl JOIN labels l ON l.id = cl.label_id
               WHERE cl.contact_id = c.id ORDER BY l.name_lower, l.id) l)`
    : sql<string>`(SELECT coalesce(json_agg(json_build_object('id', l.id, 'name', l.name, 'color', l.color)
                          ORDER BY l.name_lower, l.id), '[]')::text
         FROM contact_labels cl JOIN labels l ON l.id = cl.label_id WHERE cl.contact_id = c.id)`;
}

interface ViewRow extends ContactRow {
  account_phone_number: string;
  account_phone_number_id: string;
  labels_json: string | null;
}

/**
 * Row → view, field by field: an object literal of fixed shape is several
 * times cheaper than rest/spread over twenty keys, and a page maps 26 rows.
 */
function toView(row: ViewRow): ContactView {
  const json = row.labels_json;
  return {
    id: row.id,
    organization_id: row.organization_id,
    account_id: row.account_id,
    phone_number: row.phone_number,
    business_scoped_user_id: row.business_scoped_user_id,
    parent_business_scoped_user_id: row.parent_business_scoped_user_id,
    username: row.username,
    profile_name: row.profile_name,
    display_name: row.display_name,
    email: row.email,
    metadata: row.metadata,
    source: row.source,
    marketing_opt_out: row.marketing_opt_out,
    marketing_opt_out_at: row.marketing_opt_out_at,
    search_text: row.search_text,
    created_at: row.created_at,
    updated_at: row.updated_at,
    account_phone_number: row.account_phone_number,
    account_phone_number_id: row.account_phone_number_id,
    labels: !json || json === "[]" ? [] : (JSON.parse(json) as LabelRef[]),
  };
}

/**
 * LIMIT as a literal, not a bound parameter. With a bound LIMIT, each run of
 * a cached SQLite statement cost as much as preparing it anew (~40 µs more on
 * a simple query; the contact view for one id: 110 → 20 µs of CPU with the
 * literal) — SQLite's planner uses the LIMIT's value, so rebinding it makes
 * the statement re-prepare. Limits are few (1–101 and the walk budget), so the
 * statement cache holds every variant. Harmless on PostgreSQL.
 */
function literalLimit(limit: number) {
  return sql.lit(limit);
}

/**
 * One statement: an inner query picks the contacts (filtered, ordered, limited),
 * the outer one adds the account's numbers and the labels.
 */
function viewsQuery(
  db: Executor,
  dialect: Dialect,
  where: (eb: ContactsEb) => Expression<SqlBool>,
  limit: number,
  options: { outerTerm?: string; hint?: PlanHint } = {},
) {
  const { outerTerm, hint = "ordered" } = options;
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new RangeError(`limit must be a positive integer: ${limit}`);
  const inner =
    outerTerm === undefined
      ? db
          .selectFrom("contacts")
          .select(CONTACT_COLUMNS)
          .where(where)
          .orderBy(opaque(dialect, hint, "contacts.created_at", true), "desc")
          .orderBy(opaque(dialect, hint, "contacts.id", true), "desc")
          .limit(literalLimit(limit))
      : db
          .selectFrom("contacts")
          .select(CONTACT_COLUMNS)
          .where((eb) => eb("contacts.id", "in", walkedIds(db, dialect, where, outerTerm, limit)))
          .orderBy(opaque(dialect, "unordered", "contacts.created_at", true), "desc")
          .orderBy(opaque(dialect, "unordered", "contacts.id", true), "desc")
          .limit(literalLimit(limit));
  return db
    .selectFrom(inner.as("c"))
    .innerJoin("accounts as a", "a.id", "c.account_id")
    .selectAll("c")
    .select(["a.phone_number as account_phone_number", "a.phone_number_id as account_phone_number_id"])
    .select(labelsJson(dialect).as("labels_json"))
    .orderBy("c.created_at", "desc")
    .orderBy("c.id", "desc")
    .limit(literalLimit(limit));
}

/**
 * The search walk: the first SEARCH_WALK_BUDGET rows in list order, reading
 * only what the substring test needs (a third cheaper than whole rows), and
 * of those the first `limit` that contain the term.
 */
function walkedIds(
  db: Executor,
  dialect: Dialect,
  where: (eb: ContactsEb) => Expression<SqlBool>,
  term: string,
  limit: number,
) {
  const budget = db
    .selectFrom("contacts")
    .select(["contacts.id", "contacts.created_at", "contacts.search_text"])
    .where(where)
    .orderBy("contacts.created_at", "desc")
    .orderBy("contacts.id", "desc")
    .limit(literalLimit(SEARCH_WALK_BUDGET));
  return db
    .selectFrom(budget.as("w"))
    .select("w.id")
    .where(
      dialect === "sqlite"
        ? sql<SqlBool>`instr(w.search_text, ${term}) > 0`
        : sql<SqlBool>`strpos(w.search_text, ${term}) > 0`,
    )
    .orderBy("w.created_at", "desc")
    .orderBy("w.id", "desc")
    .limit(literalLimit(limit));
}

/**
 * A page of contacts in `created_at desc, id desc` order after `after`.
 *
 * A search first walks the ordered index for up to SEARCH_WALK_BUDGET rows and
 * filters them: a common term fills the page there, touching a few hundred
 * rows. Only when the page is not full does it ask the trigram index (FTS5 on
 * SQLite, pg_trgm on PostgreSQL), which is fast exactly when the term is rare.
 */
export async function listContactViews(
  db: Executor,
  dialect: Dialect,
  filters: ContactFilters,
  after: Keyset | undefined,
  limit: number,
): Promise<ContactView[]> {
  const marked = markedFilters(filters);
  const markedAfter = after && {
    created_at: LIST_PARAM.afterAt as unknown as number,
    id: LIST_PARAM.afterId,
  };
  const values = listValues(filters, after);
  const shape = [dialect, limit, after !== undefined, ...Object.values(marked)];
  const term = filters.searchTerm;
  if (term === undefined) {
    // An identity filter finds at most one row per account: its index drives, not the order.
    const hint =
      filters.phone !== undefined || filters.businessScopedUserId !== undefined ? "unordered" : "ordered";
    return runTemplate(db, JSON.stringify(["plain", hint, ...shape]), values, () =>
      viewsQuery(db, dialect, (eb) => filterConditions(eb, marked, markedAfter, dialect, hint), limit, {
        hint,
      }),
    );
  }
  const walked = await runTemplate(db, JSON.stringify(["walk", ...shape]), values, () =>
    viewsQuery(db, dialect, (eb) => filterConditions(eb, marked, markedAfter, dialect), limit, {
      outerTerm: LIST_PARAM.term,
    }),
  );
  if (walked.length >= limit) return walked;
  // The walk did not fill the page: the term is rare, so its index drives and the few hits are sorted.
  const short = term.length < 3;
  const hint = short ? "ordered" : "rowid";
  return runTemplate(db, JSON.stringify(["fallback", short, ...shape]), values, () =>
    viewsQuery(
      db,
      dialect,
      (eb) =>
        eb.and([
          filterConditions(eb, marked, markedAfter, dialect, hint),
          indexedSearchCondition(dialect, LIST_PARAM.term, short),
        ]),
      limit,
      { hint },
    ),
  );
}

/**
 * Stand-ins for the values of a list query. A list's SQL depends only on
 * which filters are present (and the limit, the plan hint, the opt-out
 * value): it is built and compiled once per shape with these stand-ins, and
 * each run swaps in the request's values (building and compiling it with
 * Kysely cost about as much CPU as SQLite running it).
 */
const LIST_PARAM = {
  org: "\u0000pb:list:org",
  account: "\u0000pb:list:account",
  phone: "\u0000pb:list:phone",
  bsuid: "\u0000pb:list:bsuid",
  createdAfter: "\u0000pb:list:created_after",
  createdBefore: "\u0000pb:list:created_before",
  updatedAfter: "\u0000pb:list:updated_after",
  label: "\u0000pb:list:label",
  afterAt: "\u0000pb:list:after_at",
  afterId: "\u0000pb:list:after_id",
  term: "\u0000pb:list:term",
} as const;

/** The filters with a stand-in for each present value (marketingOptOut is part of the shape). */
function markedFilters(f: ContactFilters): ContactFilters {
  const mark = <T>(value: T | undefined, marker: string) => (value === undefined ? undefined : (marker as T));
  return {
    organizationId: LIST_PARAM.org,
    accountId: mark(f.accountId, LIST_PARAM.account),
    phone: mark(f.phone, LIST_PARAM.phone),
    searchTerm: mark(f.searchTerm, LIST_PARAM.term),
    labelId: mark(f.labelId, LIST_PARAM.label),
    createdAfter: mark(f.createdAfter, LIST_PARAM.createdAfter),
    createdBefore: mark(f.createdBefore, LIST_PARAM.createdBefore),
    updatedAfter: mark(f.updatedAfter, LIST_PARAM.updatedAfter),
    marketingOptOut: f.marketingOptOut,
    businessScopedUserId: mark(f.businessScopedUserId, LIST_PARAM.bsuid),
  };
}

function listValues(f: ContactFilters, after: Keyset | undefined): Map<unknown, unknown> {
  const values = new Map<unknown, unknown>([
    [LIST_PARAM.org, f.organizationId],
    [LIST_PARAM.account, f.accountId],
    [LIST_PARAM.phone, f.phone],
    [LIST_PARAM.bsuid, f.businessScopedUserId],
    [LIST_PARAM.createdAfter, f.createdAfter],
    [LIST_PARAM.createdBefore, f.createdBefore],
    [LIST_PARAM.updatedAfter, f.updatedAfter],
    [LIST_PARAM.label, f.labelId],
    [LIST_PARAM.afterAt, after?.created_at],
    [LIST_PARAM.afterId, after?.id],
  ]);
  if (f.searchTerm !== undefined) {
    values.set(LIST_PARAM.term, f.searchTerm);
    values.set(phraseOf(LIST_PARAM.term), phraseOf(f.searchTerm));
    values.set(patternOf(LIST_PARAM.term), patternOf(f.searchTerm));
  }
  return values;
}

const listTemplates = new Map<string, CompiledQuery>();
const LIST_TEMPLATES_MAX = 500;

async function runTemplate(
  db: Executor,
  key: string,
  values: Map<unknown, unknown>,
  build: () => { compile(): CompiledQuery },
): Promise<ContactView[]> {
  let template = listTemplates.get(key);
  if (!template) {
    template = build().compile();
    if (listTemplates.size >= LIST_TEMPLATES_MAX) listTemplates.delete(listTemplates.keys().next().value!);
    listTemplates.set(key, template);
  }
  const parameters = template.parameters.map((p) => (values.has(p) ? values.get(p) : p));
  const { rows } = await db.executeQuery<ViewRow>(CompiledQuery.raw(template.sql, parameters));
  return rows.map(toView);
}

/** Stand-ins a compiled template is built with; each run swaps in the real values. */
const PARAM = { org: "\u0000pb:org", id: "\u0000pb:id", account: "\u0000pb:account" } as const;
const viewByIdTemplates = new Map<string, CompiledQuery>();

/**
 * One contact with its view. The hottest query of all: its SQL is built and
 * compiled once per dialect and shape, then run with the request's values
 * (building the query with Kysely cost more CPU than SQLite running it).
 */
export async function findContactView(
  db: Executor,
  dialect: Dialect,
  organizationId: string,
  id: string,
  accountId?: string,
): Promise<ContactView | undefined> {
  const key = `${dialect}:${accountId !== undefined}`;
  let template = viewByIdTemplates.get(key);
  if (!template) {
    template = viewsQuery(
      db,
      dialect,
      (eb) =>
        eb.and([
          eb("contacts.organization_id", "=", PARAM.org),
          eb("contacts.id", "=", PARAM.id),
          ...(accountId === undefined ? [] : [eb("contacts.account_id", "=", PARAM.account)]),
        ]),
      1,
      { hint: "unordered" },
    ).compile();
    viewByIdTemplates.set(key, template);
  }
  const values: Record<string, unknown> = {
    [PARAM.org]: organizationId,
    [PARAM.id]: id,
    [PARAM.account]: accountId,
  };
  const parameters = template.parameters.map((p) => (typeof p === "string" && p in values ? values[p] : p));
  const { rows } = await db.executeQuery<ViewRow>(CompiledQuery.raw(template.sql, parameters));
  return rows[0] ? toView(rows[0]) : undefined;
}

export async function findContactRow(db: Executor, id: string): Promise<ContactRow | undefined> {
  return db.selectFrom("contacts").select(CONTACT_COLUMNS).where("id", "=", id).executeTakeFirst();
}

/** The contact holding this identity in the account (phone first when both are given). */
export async function findByIdentity(
  db: Executor,
  accountId: string,
  identity: { phone_number?: string | null | undefined; business_scoped_user_id?: string | null | undefined },
): Promise<ContactRow | undefined> {
  if (identity.phone_number) {
    const byPhone = await db
      .selectFrom("contacts")
      .select(CONTACT_COLUMNS)
      .where("account_id", "=", accountId)
      .where("phone_number", "=", identity.phone_number)
      .executeTakeFirst();
    if (byPhone) return byPhone;
  }
  if (identity.business_scoped_user_id) {
    return db
      .selectFrom("contacts")
      .select(CONTACT_COLUMNS)
      .where("account_id", "=", accountId)
      .where("business_scoped_user_id", "=", identity.business_scoped_user_id)
      .executeTakeFirst();
  }
  return undefined;
}

/** Inserts unless a unique identity is taken; true when the row was written. */
export async function insertContactIfAbsent(db: Executor, row: Insertable<ContactsTable>): Promise<boolean> {
  const result = await db
    .insertInto("contacts")
    .values(row)
    .onConflict((oc) => oc.doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export async function updateContactRow(
  db: Executor,
  id: string,
  patch: Updateable<ContactsTable>,
): Promise<void> {
  await db.updateTable("contacts").set(patch).where("id", "=", id).execute();
}

export async function deleteContactRow(db: Executor, organizationId: string, id: string): Promise<boolean> {
  const result = await db
    .deleteFrom("contacts")
    .where("id", "=", id)
    .where("organization_id", "=", organizationId)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export async function attachLabels(
  db: Executor,
  contactId: string,
  labelIds: string[],
  at: number,
): Promise<void> {
  if (labelIds.length === 0) return;
  await db
    .insertInto("contact_labels")
    .values(labelIds.map((label_id) => ({ contact_id: contactId, label_id, created_at: at })))
    .onConflict((oc) => oc.doNothing())
    .execute();
}

/** Which of these label ids exist in the organisation. */
export async function existingLabelIds(
  db: Executor,
  organizationId: string,
  ids: string[],
): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db
    .selectFrom("labels")
    .select("id")
    .where("organization_id", "=", organizationId)
    .where("id", "in", ids)
    .execute();
  return new Set(rows.map((r) => r.id));
}
