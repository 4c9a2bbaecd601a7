import {
  CompiledQuery,
  type Expression,
  type ExpressionBuilder,
  type Insertable,
  type RawBuilder,
  type Selectable,
  type SqlBool,
  sql,
  type Updateable,
} from "kysely";
import type { ContactsTable, Database } from "../schema.ts";
import { type Dialect, dialectOf, type Executor, executeArrayRows, firstRow, prepared } from "../store.ts";

/** A contact's own columns; tombstones (merged_into, merge_id) are read by repositories/merges.ts. */
export type ContactRow = Omit<Selectable<ContactsTable>, "seq" | "merged_into" | "merge_id">;

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
  /** Linked to this customer (a lower-case UUID). */
  customerId?: string | undefined;
  /** Linked to the organisation's customer with this `external_customer_id`. */
  customerExternalId?: string | undefined;
  /** true: linked to any customer; false: linked to none. */
  hasCustomer?: boolean | undefined;
  /** Case-insensitive substring of profile_name; already lower-cased. */
  profileNameContains?: string | undefined;
  /** Substring of the phone number's digits; digits only. */
  phoneContains?: string | undefined;
}

export interface Keyset {
  created_at: number;
  id: string;
}

export const CONTACT_COLUMNS = [
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
  "customer_id",
  "created_at",
  "updated_at",
] as const satisfies ReadonlyArray<keyof ContactRow>;

/**
 * Rows walked in order before the search falls back to its index (see
 * docs/search.md): 2,000 on PostgreSQL, whose fallback fetches and sorts
 * every match; 500 on SQLite, whose fallback reads only as many trigram hits
 * as the page needs, so a longer walk would mostly be wasted on rarer terms.
 */
export const SEARCH_WALK_BUDGET = 2000;
/**
 * Longer walks, tried when the first one found some matches but not a page:
 * the term is common enough that walking on is cheaper than sorting all its
 * matches. Few fixed sizes, so that the statement cache holds every variant.
 */
export const SEARCH_WIDER_WALKS = [4000, 8000, 16000, 32000] as const;

/** The wider walk expected to fill a page of `limit` (with a margin), if one is short enough. */
export function widerWalkBudget(found: number, limit: number): number | undefined {
  if (found <= 0) return undefined;
  const needed = (SEARCH_WALK_BUDGET * limit * 1.5) / found;
  return SEARCH_WIDER_WALKS.find((b) => b >= needed);
}

const SQLITE_SEARCH_WALK_BUDGET = 500;

function searchWalkBudget(dialect: Dialect): number {
  return dialect === "sqlite" ? SQLITE_SEARCH_WALK_BUDGET : SEARCH_WALK_BUDGET;
}

type ContactsEb = ExpressionBuilder<Database, "contacts">;

/** Where a page starts: strictly after (older than) or strictly before (newer than) a position. */
export interface Bound {
  after?: Keyset | undefined;
  before?: Keyset | undefined;
}

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

/**
 * `contacts.organization_id` for a statement whose ids drive (`id IN (…)`):
 * hidden from SQLite's planner (unary `+`), which has no statistics and
 * otherwise walks the organisation's whole index — from two ids up, at 1M
 * contacts hundreds of milliseconds — instead of looking the ids up.
 */
export function organizationOfIds(db: Executor) {
  return dialectOf(db) === "sqlite"
    ? sql<string>`+contacts.organization_id`
    : sql.ref<string>("contacts.organization_id");
}

function filterConditions(
  eb: ContactsEb,
  f: ContactFilters,
  bound: Bound,
  dialect: Dialect,
  hint: PlanHint = "ordered",
): Expression<SqlBool> {
  const col = (name: string) => opaque(dialect, hint, name, false);
  const { after, before } = bound;
  const c: Expression<SqlBool>[] = [eb(col("contacts.organization_id"), "=", f.organizationId)];
  // Merged-away contacts (tombstones, docs/merge.md) are never listed.
  c.push(eb(col("contacts.merged_into"), "is", null));
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
  if (f.customerId !== undefined) c.push(eb(col("contacts.customer_id"), "=", f.customerId));
  if (f.customerExternalId !== undefined) {
    c.push(
      eb(
        col("contacts.customer_id"),
        "in",
        eb
          .selectFrom("customers")
          .select("customers.id")
          .where("customers.organization_id", "=", f.organizationId)
          .where("customers.external_customer_id", "=", f.customerExternalId),
      ),
    );
  }
  if (f.hasCustomer !== undefined) {
    c.push(eb(col("contacts.customer_id"), f.hasCustomer ? "is not" : "is", null));
  }
  // LIKE with an escaped pattern reads the same on both dialects.
  if (f.profileNameContains !== undefined) {
    c.push(sql<SqlBool>`lower(contacts.profile_name) LIKE ${likePattern(f.profileNameContains)} ESCAPE '\\'`);
  }
  if (f.phoneContains !== undefined) {
    c.push(sql<SqlBool>`contacts.phone_number LIKE ${likePattern(f.phoneContains)} ESCAPE '\\'`);
  }
  if (after || before) {
    const position = eb.tuple(col("contacts.created_at"), col("contacts.id"));
    if (after) c.push(eb(position, "<", eb.tuple(after.created_at, after.id)));
    if (before) c.push(eb(position, ">", eb.tuple(before.created_at, before.id)));
  }
  return eb.and(c);
}

/** `%term%` with LIKE's wildcards and the escape character escaped. */
function likePattern(term: string): string {
  return `%${term.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
}

/** Exact substring test on the lower-cased search text (no index). */
function substringCondition(dialect: Dialect, term: string) {
  return dialect === "sqlite"
    ? sql<SqlBool>`instr(contacts.search_text, ${term}) > 0`
    : sql<SqlBool>`strpos(contacts.search_text, ${term}) > 0`;
}

/** Substring test that the trigram index can answer (terms of 3+ characters), plus the exact test. */
function indexedSearchCondition(dialect: Dialect, term: string) {
  if (term.length < 3) return substringCondition(dialect, term);
  if (dialect === "sqlite") {
    const phrase = `"${term.replaceAll('"', '""')}"`;
    return sql<SqlBool>`contacts.seq IN (SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH ${phrase}) AND instr(contacts.search_text, ${term}) > 0`;
  }
  const pattern = `%${term.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
  return sql<SqlBool>`contacts.search_text LIKE ${pattern}`;
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

/**
 * The view's columns in select order: the contact's (`c.*`, which is
 * CONTACT_COLUMNS), then the account's numbers and the labels. View queries
 * return array rows (store.ts, ARRAY_ROWS), read by these positions.
 */
const VIEW_COLUMNS = [
  ...CONTACT_COLUMNS,
  "account_phone_number",
  "account_phone_number_id",
  "labels_json",
] as const;
const V = Object.fromEntries(VIEW_COLUMNS.map((name, index) => [name, index])) as {
  readonly [K in (typeof VIEW_COLUMNS)[number]]: number;
};

/** Array row → view, field by field (an object literal of fixed shape). */
function toView(row: unknown[]): ContactView {
  const json = row[V.labels_json] as string | null;
  return {
    id: row[V.id] as string,
    organization_id: row[V.organization_id] as string,
    account_id: row[V.account_id] as string,
    phone_number: row[V.phone_number] as string | null,
    business_scoped_user_id: row[V.business_scoped_user_id] as string | null,
    parent_business_scoped_user_id: row[V.parent_business_scoped_user_id] as string | null,
    username: row[V.username] as string | null,
    profile_name: row[V.profile_name] as string | null,
    display_name: row[V.display_name] as string | null,
    email: row[V.email] as string | null,
    metadata: row[V.metadata] as string,
    source: row[V.source] as ContactRow["source"],
    marketing_opt_out: row[V.marketing_opt_out] as number,
    marketing_opt_out_at: row[V.marketing_opt_out_at] as number | null,
    search_text: row[V.search_text] as string,
    customer_id: row[V.customer_id] as string | null,
    created_at: row[V.created_at] as number,
    updated_at: row[V.updated_at] as number,
    account_phone_number: row[V.account_phone_number] as string,
    account_phone_number_id: row[V.account_phone_number_id] as string,
    labels: !json || json === "[]" ? [] : (JSON.parse(json) as LabelRef[]),
  };
}

/**
 * LIMIT as a literal, not a bound parameter. With a bound LIMIT, each run of
 * a cached SQLite statement cost as much as preparing it anew (~40 µs more on
 * a simple query) — SQLite's planner uses the LIMIT's value, so rebinding it
 * makes the statement re-prepare. Limits are few (1–101, the walk budget and
 * a few constants), so the statement cache holds every variant. Harmless on
 * PostgreSQL.
 */
function literalLimit(limit: number) {
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new RangeError(`limit must be a positive integer: ${limit}`);
  }
  return sql.lit(limit);
}

interface ViewWindow {
  ascending?: boolean;
  offset?: number;
}

/**
 * One statement: an inner query picks the contacts (filtered, ordered, limited),
 * the outer one adds the account's numbers and the labels. With substring
 * filters (`outer`), the inner query takes the page's ids from the search walk
 * (walkedIds) and reads only those rows whole.
 */
async function selectViews(
  db: Executor,
  dialect: Dialect,
  where: (eb: ContactsEb) => Expression<SqlBool>,
  limit: number,
  options: ViewOptions = {},
): Promise<ContactView[]> {
  const rows = await executeArrayRows(db, viewsQuery(db, dialect, where, limit, options).compile());
  if (options.window?.ascending) rows.reverse();
  return rows.map(toView);
}

interface ViewOptions {
  outer?: SubstringFilters | undefined;
  /** Rows the search walk reads (searchWalkBudget(dialect) unless a wider walk). */
  walkBudget?: number;
  hint?: PlanHint;
  window?: ViewWindow;
}

function viewsQuery(
  db: Executor,
  dialect: Dialect,
  where: (eb: ContactsEb) => Expression<SqlBool>,
  limit: number,
  options: ViewOptions = {},
) {
  const { outer, hint = "ordered", window = {}, walkBudget = searchWalkBudget(dialect) } = options;
  // Ascending order reads the rows just before a position (then reversed below).
  const order = window.ascending ? "asc" : "desc";
  // The walked ids are a short list: an id lookup each, then a sort of those few rows.
  const innerHint = outer === undefined ? hint : "unordered";
  let inner = db
    .selectFrom("contacts")
    .select(CONTACT_COLUMNS)
    .where(
      outer === undefined
        ? where
        : (eb) => eb("contacts.id", "in", walkedIds(db, dialect, where, outer, limit, window, walkBudget)),
    )
    .orderBy(opaque(dialect, innerHint, "contacts.created_at", true), order)
    .orderBy(opaque(dialect, innerHint, "contacts.id", true), order)
    .limit(literalLimit(limit));
  if (window.offset && outer === undefined) inner = inner.offset(window.offset);
  return db
    .selectFrom(inner.as("c"))
    .innerJoin("accounts as a", "a.id", "c.account_id")
    .selectAll("c")
    .select(["a.phone_number as account_phone_number", "a.phone_number_id as account_phone_number_id"])
    .select(labelsJson(dialect).as("labels_json"))
    .orderBy("c.created_at", order)
    .orderBy("c.id", order)
    .limit(literalLimit(limit));
}

/**
 * The search walk: the first `walkBudget` rows in list order (searchWalkBudget
 * of the dialect unless a wider walk), reading only what the substring tests
 * need (cheaper than whole rows), and of those the first `limit` that pass them.
 */
function walkedIds(
  db: Executor,
  dialect: Dialect,
  where: (eb: ContactsEb) => Expression<SqlBool>,
  outer: SubstringFilters,
  limit: number,
  window: ViewWindow,
  walkBudget: number,
) {
  const order = window.ascending ? "asc" : "desc";
  let budget = db
    .selectFrom("contacts")
    .select(["contacts.id", "contacts.created_at", "contacts.search_text"])
    .where(where)
    .orderBy("contacts.created_at", order)
    .orderBy("contacts.id", order)
    .limit(literalLimit(walkBudget));
  if (outer.profileNameContains !== undefined) budget = budget.select("contacts.profile_name");
  if (outer.phoneContains !== undefined) budget = budget.select("contacts.phone_number");
  if (window.offset) budget = budget.offset(window.offset);
  return db
    .selectFrom(budget.as("w"))
    .select("w.id")
    .where(outerConditions(dialect, outer))
    .orderBy("w.created_at", order)
    .orderBy("w.id", order)
    .limit(literalLimit(limit));
}

/** The substring filters: their selectivity is unknown to the planners, so they are applied by walking. */
interface SubstringFilters {
  searchTerm?: string | undefined;
  profileNameContains?: string | undefined;
  phoneContains?: string | undefined;
}

function substringFiltersOf(filters: ContactFilters): SubstringFilters | undefined {
  const { searchTerm, profileNameContains, phoneContains } = filters;
  if (searchTerm === undefined && profileNameContains === undefined && phoneContains === undefined) {
    return undefined;
  }
  return { searchTerm, profileNameContains, phoneContains };
}

/** The substring filters over the walked rows (`w`), exact tests without an index. */
function outerConditions(dialect: Dialect, outer: SubstringFilters) {
  const parts = [];
  if (outer.searchTerm !== undefined) {
    parts.push(
      dialect === "sqlite"
        ? sql<SqlBool>`instr(w.search_text, ${outer.searchTerm}) > 0`
        : sql<SqlBool>`strpos(w.search_text, ${outer.searchTerm}) > 0`,
    );
  }
  if (outer.profileNameContains !== undefined) {
    parts.push(
      sql<SqlBool>`lower(w.profile_name) LIKE ${likePattern(outer.profileNameContains)} ESCAPE '\\'`,
    );
  }
  if (outer.phoneContains !== undefined) {
    parts.push(sql<SqlBool>`w.phone_number LIKE ${likePattern(outer.phoneContains)} ESCAPE '\\'`);
  }
  return sql<SqlBool>`(${sql.join(parts, sql` AND `)})`;
}

/**
 * A page of contacts in `created_at desc, id desc` order after `after` (or,
 * ascending = the page just before a position, see listContactViewsBefore).
 *
 * Substring filters (search, profile_name_contains, wa_id_contains) first walk
 * the ordered index for up to searchWalkBudget rows and filter them: a
 * common term fills the page there, touching a few hundred rows. Only when the
 * page is not full does the query ask for every match (the search's trigram
 * index: FTS5 on SQLite, pg_trgm on PostgreSQL), which is fast exactly when
 * the term is rare; on SQLite that fallback is driven by the FTS rowid list
 * and its few hits are sorted (plan hint "rowid"). Without that walk, a
 * planner that underestimates how common a term is sorts every match of the
 * organisation.
 */
async function walkOrQuery(
  db: Executor,
  dialect: Dialect,
  filters: ContactFilters,
  bound: Bound,
  limit: number,
  window: ViewWindow = {},
): Promise<ContactView[]> {
  const outer = substringFiltersOf(filters);
  if (outer === undefined) {
    // An identity filter finds at most one row per account: its index drives, not the order.
    const hint: PlanHint =
      filters.phone !== undefined || filters.businessScopedUserId !== undefined ? "unordered" : "ordered";
    return selectViews(db, dialect, (eb) => filterConditions(eb, filters, bound, dialect, hint), limit, {
      hint,
      window,
    });
  }
  const plain = { ...filters, profileNameContains: undefined, phoneContains: undefined };
  const walked = await selectViews(db, dialect, (eb) => filterConditions(eb, plain, bound, dialect), limit, {
    outer,
    window,
  });
  if (walked.length >= limit) return walked;
  // The walk did not fill the page: the matches are rare or lie further back.
  if (dialect === "sqlite" && (indexedTermOf(filters)?.length ?? 0) >= 3) {
    // The trigram hits in rowid order, only as many as the page needs (docs/search.md).
    const hits = await rowidOrderedMatches(db, filters, bound, limit, window.ascending === true);
    return viewsOfHits(db, filters.organizationId, hits);
  }
  // PostgreSQL: some matches, not a page (a term in ~0.1–2 % of contacts): a longer walk fills the
  // page for less than fetching and sorting every match of the organisation.
  const wider = widerWalkBudget(walked.length, limit);
  if (wider !== undefined) {
    const more = await selectViews(db, dialect, (eb) => filterConditions(eb, plain, bound, dialect), limit, {
      outer,
      window,
      walkBudget: wider,
    });
    if (more.length >= limit) return more;
  }
  // The walks did not fill the page: the term is rare, so its index drives and the few hits are sorted.
  const hint: PlanHint = (indexedTermOf(filters)?.length ?? 0) >= 3 ? "rowid" : "ordered";
  return selectViews(db, dialect, (eb) => allConditions(eb, dialect, filters, bound, hint), limit, {
    hint,
    window,
  });
}

/** Rowids per block of contact_seq_blocks (SQLite migration 0013): a row's block is `seq >> 12`. */
const SEQ_BLOCK_BITS = 12;
/** Trigram hits read per step of the rowid-ordered fallback: the first step, then larger ones. */
const HIT_STEPS = [64, 256, 1024, 4096, 16_384];

interface Hit {
  seq: number;
  created_at: number;
  id: string;
}

/** List order (created_at desc, id desc), or its reverse. */
function compareHits(ascending: boolean) {
  const sign = ascending ? -1 : 1;
  return (a: Hit, b: Hit) => sign * (b.created_at - a.created_at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

/**
 * The first `limit` contacts in list order (or its reverse, `ascending`) that
 * match the filters, on SQLite, for a filter set whose indexed term has 3+
 * characters: the term's trigram hits are read in rowid order, newest rowids
 * first (oldest first when ascending), a step at a time, each hit checked
 * against every filter and the bound. Rowids follow creation time, but not
 * exactly (backdated rows, merges that move `created_at`, clocks), so the read
 * stops only when contact_seq_blocks proves it: once `limit` matches are in
 * hand, every block holding a row that could come before the last of them
 * lies inside the range already read. The cost follows the hits read, which
 * is about the page for a term whose matches are clustered anywhere in time,
 * not the number of matches. `any`: the first match found is enough (whether
 * one exists).
 */
async function rowidOrderedMatches(
  db: Executor,
  filters: ContactFilters,
  bound: Bound,
  limit: number,
  ascending: boolean,
  any = false,
): Promise<Hit[]> {
  const term = indexedTermOf(filters)!;
  const phrase = `"${term.replaceAll('"', '""')}"`;
  // The rowids to read lie strictly between lo and hi.
  let lo = -1;
  let hi = Number.MAX_SAFE_INTEGER;
  if (bound.after) {
    // Older than `after`: only blocks holding a row that old.
    const block = await blockEdge(db, "max", "min_created_at", "<=", bound.after.created_at);
    if (block === null) return [];
    hi = Math.min(hi, (block + 1) << SEQ_BLOCK_BITS);
  }
  if (bound.before) {
    // Newer than `before`: only blocks holding a row that new.
    const block = await blockEdge(db, "min", "max_created_at", ">=", bound.before.created_at);
    if (block === null) return [];
    lo = Math.max(lo, (block << SEQ_BLOCK_BITS) - 1);
  }
  const order = compareHits(ascending);
  let matches: Hit[] = [];
  for (let step = 0; lo + 1 < hi; step = Math.min(step + 1, HIT_STEPS.length - 1)) {
    const size = HIT_STEPS[step]!;
    const rows = await db
      .selectFrom(
        sql<{ r: number }>`(SELECT rowid AS r FROM contacts_fts WHERE contacts_fts MATCH ${phrase}
            AND rowid > ${lo} AND rowid < ${hi} ORDER BY rowid ${sql.raw(ascending ? "ASC" : "DESC")}
            LIMIT ${literalLimit(size)})`.as("h"),
      )
      .leftJoin("contacts", (join) =>
        join
          .onRef("contacts.seq", "=", "h.r")
          .on((eb) =>
            eb.and([
              filterConditions(eb as unknown as ContactsEb, filters, bound, "sqlite", "rowid"),
              substringCondition("sqlite", term),
            ]),
          ),
      )
      .select(["h.r", "contacts.created_at", "contacts.id"])
      .orderBy("h.r", ascending ? "asc" : "desc")
      .execute();
    for (const row of rows) {
      if (row.id !== null) matches.push({ seq: row.r, created_at: row.created_at!, id: row.id });
    }
    if (rows.length > 0) {
      const edge = rows[rows.length - 1]!.r;
      if (ascending) lo = edge;
      else hi = edge;
    }
    if (rows.length < size || (any && matches.length > 0)) break;
    if (matches.length < limit) continue;
    matches.sort(order);
    matches = matches.slice(0, limit);
    // Where rows that could still come before the last match can lie; the rest need not be read.
    const last = matches[limit - 1]!;
    if (ascending) {
      const block = await blockEdge(db, "max", "min_created_at", "<=", last.created_at);
      hi = Math.min(hi, block === null ? 0 : (block + 1) << SEQ_BLOCK_BITS);
    } else {
      const block = await blockEdge(db, "min", "max_created_at", ">=", last.created_at);
      lo = Math.max(lo, block === null ? hi : (block << SEQ_BLOCK_BITS) - 1);
    }
  }
  return matches.sort(order).slice(0, limit);
}

/** The lowest (min) or highest (max) block of contact_seq_blocks with a row as new or as old as `at`. */
async function blockEdge(
  db: Executor,
  pick: "min" | "max",
  column: "min_created_at" | "max_created_at",
  op: "<=" | ">=",
  at: number,
): Promise<number | null> {
  const row = await db
    .selectFrom("contact_seq_blocks")
    .select((eb) => eb.fn[pick]<number | null>("block").as("block"))
    .where(column, op, at)
    .executeTakeFirst();
  return row?.block ?? null;
}

/** The views of the hits, in list order (as selectViews returns them, whichever way the page was read). */
async function viewsOfHits(db: Executor, organizationId: string, hits: Hit[]): Promise<ContactView[]> {
  if (hits.length === 0) return [];
  return findContactViews(
    db,
    organizationId,
    hits.map((h) => h.id),
  );
}

export async function listContactViews(
  db: Executor,
  filters: ContactFilters,
  after: Keyset | undefined,
  limit: number,
): Promise<ContactView[]> {
  const dialect = dialectOf(db);
  return walkOrQuery(db, dialect, filters, { after }, limit);
}

/** The substring term allConditions answers through the trigram index (when 3+ characters long). */
function indexedTermOf(filters: ContactFilters): string | undefined {
  if (filters.searchTerm !== undefined) return filters.searchTerm;
  const terms = [filters.profileNameContains, filters.phoneContains].filter(
    (t): t is string => t !== undefined,
  );
  if (terms.length === 0) return undefined;
  return terms.reduce((a, b) => (b.length > a.length ? b : a));
}

/**
 * The condition of a filter set with the substring filters answered by the
 * trigram index. `profile_name_contains` and `wa_id_contains` are substrings
 * of the search text too (it holds the lower-cased profile name and the phone
 * digits), so the index narrows them and the exact tests of filterConditions
 * decide. (The search term's condition is also its exact test.)
 */
function allConditions(
  eb: ContactsEb,
  dialect: Dialect,
  filters: ContactFilters,
  bound: Bound = {},
  hint: PlanHint = "ordered",
) {
  const base = filterConditions(eb, filters, bound, dialect, hint);
  const term = indexedTermOf(filters);
  if (term === undefined) return base;
  return eb.and([base, indexedSearchCondition(dialect, term)]);
}

/**
 * The `limit` contacts just before (newer than) `before`, returned in the usual
 * `created_at desc, id desc` order: the page a client walking backwards asks for.
 */
export async function listContactViewsBefore(
  db: Executor,
  filters: ContactFilters,
  before: Keyset,
  limit: number,
): Promise<ContactView[]> {
  const dialect = dialectOf(db);
  return walkOrQuery(db, dialect, filters, { before }, limit, { ascending: true });
}

/** Offset pagination (bounded by the caller): `limit` contacts after skipping `offset`. */
export async function listContactViewsAt(
  db: Executor,
  filters: ContactFilters,
  offset: number,
  limit: number,
): Promise<ContactView[]> {
  const dialect = dialectOf(db);
  return selectViews(db, dialect, (eb) => allConditions(eb, dialect, filters), limit, { window: { offset } });
}

/** How many contacts match the filters. */
export async function countContacts(db: Executor, filters: ContactFilters): Promise<number> {
  const dialect = dialectOf(db);
  const row = await db
    .selectFrom("contacts")
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .where((eb) => allConditions(eb, dialect, filters))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Whether the filters are only the organisation and, optionally, one account (what counts maintain). */
export function isUnfiltered(filters: ContactFilters): boolean {
  return Object.entries(filters).every(
    ([key, value]) => key === "organizationId" || key === "accountId" || value === undefined,
  );
}

/**
 * The maintained number of contacts of an organisation, or of one of its
 * accounts (table contact_counts, kept by triggers in every writing
 * transaction; migration 0006): one indexed read of at most 16 rows per
 * account, whatever the number of contacts, less the merge tombstones
 * (which lists exclude). Rows of accounts that no longer exist are left out.
 */
export async function maintainedContactCount(
  db: Executor,
  organizationId: string,
  accountId: string | undefined,
): Promise<number> {
  const dialect = dialectOf(db);
  let query = db
    .selectFrom("contact_counts")
    .innerJoin("accounts", "accounts.id", "contact_counts.account_id")
    .select((eb) => eb.fn.sum<number | string | null>("contact_counts.n").as("n"))
    .where("contact_counts.organization_id", "=", organizationId)
    .where("accounts.organization_id", "=", organizationId);
  if (accountId !== undefined) query = query.where("contact_counts.account_id", "=", accountId);
  // The triggers count every row; a merged-away contact stays as a tombstone
  // row (migration 0008) that lists leave out, so the total leaves it out too.
  // Tombstones are few and indexed (the partial index contacts_merged_into),
  // which must drive: without statistics SQLite would rather walk the
  // organisation's index (a whole organisation read per count), so the
  // organisation and account terms are opaque to its planner (see PlanHint).
  const col = (name: string) => opaque(dialect, "rowid", name, false);
  let tombstones = db
    .selectFrom("contacts")
    .innerJoin("accounts", (join) =>
      join.on((eb) => eb("accounts.id", "=", col("contacts.account_id") as RawBuilder<string>)),
    )
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .where("contacts.merged_into", "is not", null)
    .where(col("contacts.organization_id"), "=", organizationId)
    .where("accounts.organization_id", "=", organizationId);
  if (accountId !== undefined) tombstones = tombstones.where(col("contacts.account_id"), "=", accountId);
  const row = await query.executeTakeFirst();
  const gone = await tombstones.executeTakeFirst();
  return Number(row?.n ?? 0) - Number(gone?.n ?? 0);
}

/** Whether any contact matching the filters lies beyond the bound (a page exists there). */
export async function contactsExist(db: Executor, filters: ContactFilters, bound: Bound): Promise<boolean> {
  const dialect = dialectOf(db);
  if (dialect === "sqlite" && (indexedTermOf(filters)?.length ?? 0) >= 3) {
    // Any trigram hit that passes every filter, read from the side of the bound.
    const hits = await rowidOrderedMatches(db, filters, bound, 1, bound.after !== undefined, true);
    return hits.length > 0;
  }
  const row = await db
    .selectFrom("contacts")
    .select("contacts.id")
    .where((eb) => allConditions(eb, dialect, filters, bound))
    .limit(literalLimit(1))
    .executeTakeFirst();
  return row !== undefined;
}

export type IdentifierColumn = "phone_number" | "business_scoped_user_id" | "parent_business_scoped_user_id";

/**
 * The id of the newest contact of the organisation (or one account) whose
 * column has this value. The matches are few (phone and BSUID are unique per
 * account), so they are read through the identifier's index and the newest is
 * picked here: an ORDER BY would tempt the planner into walking the
 * organisation's (created_at, id) index instead.
 */
export async function findNewestContactIdBy(
  db: Executor,
  organizationId: string,
  accountId: string | undefined,
  column: IdentifierColumn,
  value: string,
): Promise<string | undefined> {
  let query = db
    .selectFrom("contacts")
    .select(["contacts.id", "contacts.created_at"])
    .where("contacts.organization_id", "=", organizationId)
    .where(`contacts.${column}`, "=", value);
  if (accountId !== undefined) query = query.where("contacts.account_id", "=", accountId);
  let newest: { id: string; created_at: number } | undefined;
  for (const row of await query.limit(literalLimit(10_000)).execute()) {
    if (
      !newest ||
      row.created_at > newest.created_at ||
      (row.created_at === newest.created_at && row.id > newest.id)
    ) {
      newest = row;
    }
  }
  return newest?.id;
}

/** Unlinks every contact from a customer, bumping `updated_at` so that syncs see the change. */
/** Unlinks a customer from its contacts; returns the live ones (merged-away tombstones are unlinked too, silently). */
export async function unlinkCustomer(db: Executor, customerId: string, at: number): Promise<string[]> {
  const rows = await db
    .updateTable("contacts")
    .set((eb) => ({
      customer_id: null,
      updated_at: sql<number>`CASE WHEN ${eb.ref("updated_at")} >= ${at} THEN ${eb.ref("updated_at")} + 1 ELSE ${at} END`,
    }))
    .where("customer_id", "=", customerId)
    .returning(["id", "merged_into"])
    .execute();
  return rows.filter((r) => r.merged_into === null).map((r) => r.id);
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
  organizationId: string,
  id: string,
  accountId?: string,
): Promise<ContactView | undefined> {
  const dialect = dialectOf(db);
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
          // A merged-away id is resolved to its survivor by the domain (merges.ts).
          eb("contacts.merged_into", "is", null),
          ...(accountId === undefined ? [] : [eb("contacts.account_id", "=", PARAM.account)]),
        ]),
      1,
      // The primary key finds the one row; no reason to consider the ordered index.
      { hint: "unordered" },
    ).compile();
    // A named prepared statement on PostgreSQL: planning it cost more than running it.
    template = prepared(template);
    viewByIdTemplates.set(key, template);
  }
  const values: Record<string, unknown> = {
    [PARAM.org]: organizationId,
    [PARAM.id]: id,
    [PARAM.account]: accountId,
  };
  const parameters = template.parameters.map((p) =>
    typeof p === "string" && Object.hasOwn(values, p) ? values[p] : p,
  );
  const [row] = await executeArrayRows(db, CompiledQuery.raw(template.sql, parameters));
  return row ? toView(row) : undefined;
}

/** The views of several contacts of one organisation (those that exist), in one query. */
export async function findContactViews(
  db: Executor,
  organizationId: string,
  ids: string[],
): Promise<ContactView[]> {
  const dialect = dialectOf(db);
  if (ids.length === 0) return [];
  // The organisation term is opaque on SQLite: without statistics, from a few
  // hundred ids up the planner preferred walking the whole organisation in
  // (organization_id, updated_at) over looking the ids up (an import batch's
  // events at 1M contacts: 4 s per 500 ids instead of milliseconds).
  return selectViews(
    db,
    dialect,
    (eb) =>
      eb.and([
        eb(opaque(dialect, "rowid", "contacts.organization_id", false), "=", organizationId),
        eb("contacts.id", "in", ids),
      ]),
    ids.length,
    { hint: "unordered" },
  );
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
  // Named prepared statements on PostgreSQL (see PREPARED): one plan per shape, by an index.
  if (identity.phone_number) {
    const byPhone = await firstRow<ContactRow>(
      db,
      db
        .selectFrom("contacts")
        .select(CONTACT_COLUMNS)
        .where("account_id", "=", accountId)
        .where("phone_number", "=", identity.phone_number)
        .compile(),
    );
    if (byPhone) return byPhone;
  }
  if (identity.business_scoped_user_id) {
    return firstRow<ContactRow>(
      db,
      db
        .selectFrom("contacts")
        .select(CONTACT_COLUMNS)
        .where("account_id", "=", accountId)
        .where("business_scoped_user_id", "=", identity.business_scoped_user_id)
        .compile(),
    );
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
  organizationId: string,
  id: string,
  patch: Updateable<ContactsTable>,
): Promise<void> {
  // organization_id: redundant with the id, but it routes the statement to one tenant (docs/scaling.md).
  await db
    .updateTable("contacts")
    .set(patch)
    .where("organization_id", "=", organizationId)
    .where("id", "=", id)
    .execute();
}

export async function deleteContactRow(db: Executor, organizationId: string, id: string): Promise<boolean> {
  const result = await db
    .deleteFrom("contacts")
    .where("id", "=", id)
    .where("organization_id", "=", organizationId)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** Attaches labels to a contact; returns those it did not carry yet. */
export async function attachLabels(
  db: Executor,
  contactId: string,
  labelIds: string[],
  at: number,
): Promise<string[]> {
  if (labelIds.length === 0) return [];
  const rows = await db
    .insertInto("contact_labels")
    .values(labelIds.map((label_id) => ({ contact_id: contactId, label_id, created_at: at })))
    .onConflict((oc) => oc.doNothing())
    .returning("label_id")
    .execute();
  return rows.map((r) => r.label_id);
}

export async function contactHasLabels(db: Executor, contactId: string): Promise<boolean> {
  const row = await db
    .selectFrom("contact_labels")
    .select("label_id")
    .where("contact_id", "=", contactId)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
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
