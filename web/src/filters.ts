/** The contacts view's filters, as kept in the URL and as sent to /v1. */

export interface Filters {
  search: string;
  account: string;
  label: string;
  opt_out: string;
  from: string;
  to: string;
}

/**
 * Search as you type: the request goes out this long after the last key.
 * Short enough to feel immediate (good search boxes use 100–150 ms), long
 * enough that a typist's keys (60–120 ms apart) make one request, not one a key.
 * A newer request aborts the older one either way.
 */
export const SEARCH_DEBOUNCE_MS = 130;

/**
 * Whether the box searches as the user types: an empty box (every contact) or
 * a term of 3+ characters. A 1–2 character term waits for Enter: no trigram
 * index can answer it, so at a million contacts a rare one (“qu”) reads every
 * contact of the organisation — seconds, during which the server answers
 * nobody else on SQLite.
 */
export function searchesAsYouType(text: string): boolean {
  const n = [...text.trim()].length;
  return n === 0 || n >= 3;
}

export const FILTER_KEYS = ["search", "account", "label", "opt_out", "from", "to"] as const;

export function filtersOf(params: URLSearchParams): Filters {
  return {
    search: params.get("search") ?? "",
    account: params.get("account") ?? "",
    label: params.get("label") ?? "",
    opt_out: params.get("opt_out") ?? "",
    from: params.get("from") ?? "",
    to: params.get("to") ?? "",
  };
}

/** Start of a local calendar day (yyyy-mm-dd) as a Date, or undefined when not a date. */
function dayStart(day: string): Date | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!m) return undefined;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** The list path (org-level or one account's) and its query parameters, without paging. */
export function listRequest(
  f: Filters,
  suffix = "",
): { path: string; params: Record<string, string | undefined> } {
  const params: Record<string, string | undefined> = {};
  const search = f.search.trim();
  if (search) params.search = search.slice(0, 200);
  if (f.label) params.label = f.label;
  if (f.opt_out === "true" || f.opt_out === "false") params.marketing_opt_out = f.opt_out;
  // The API's bounds are exclusive: "from" day D means after the last instant before D; "to" day D includes D.
  const from = dayStart(f.from);
  if (from) params.created_after = new Date(from.getTime() - 1).toISOString();
  const to = dayStart(f.to);
  if (to) params.created_before = new Date(to.getFullYear(), to.getMonth(), to.getDate() + 1).toISOString();
  const base = f.account ? `/${encodeURIComponent(f.account)}/contacts` : "/contacts";
  return { path: `${base}${suffix}`, params };
}
