import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import {
  type Account,
  ApiError,
  api,
  authHeaders,
  type Contact,
  errorOf,
  isAbort,
  networkError,
  type Page,
  query,
} from "./api.ts";
import {
  FILTER_KEYS,
  type Filters,
  filtersOf,
  listRequest,
  SEARCH_DEBOUNCE_MS,
  searchesAsYouType,
} from "./filters.ts";
import type { Shared } from "./main.tsx";
import { hrefOf, rememberListHref, replaceRoute } from "./route.ts";
import { ErrorBanner, formatBytes, formatDate, LabelChip, Notice } from "./ui.tsx";
import { useVisibleRange } from "./virtual.ts";

const PAGE_SIZE = 50;
const BULK_CHUNK = 1000;

function identityOf(c: Contact): string {
  if (c.phone_number) return c.phone_number;
  if (c.username) return `@${c.username}`;
  return c.business_scoped_user_id ?? "—";
}

function accountName(accounts: Account[], pnid: string): string {
  const a = accounts.find((x) => x.phone_number_id === pnid);
  return a ? (a.name ?? a.phone_number) : pnid;
}

/** The contacts table: filters in the URL, keyset pages as the user scrolls, select many to label. */
export function ContactsPage({ shared, params }: { shared: Shared; params: URLSearchParams }) {
  const filters = filtersOf(params);
  const filterKey = FILTER_KEYS.map((k) => filters[k]).join("\u0000");
  const [searchText, setSearchText] = useState(filters.search);
  const [rows, setRows] = useState<Contact[]>([]);
  /** The search the rows shown belong to (data-search of the table: tests and the benchmark wait on it). */
  const [shownSearch, setShownSearch] = useState<string | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [hasMore, setHasMore] = useState(false);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const controller = useRef<AbortController | null>(null);
  const sentinel = useRef<HTMLTableRowElement>(null);
  const loadingMore = useRef(false);
  const body = useRef<HTMLTableSectionElement>(null);
  const visible = useVisibleRange(body, loading ? 0 : rows.length);

  const setFilter = useCallback((patch: Partial<Filters>) => {
    const next = { ...filtersOf(new URLSearchParams(location.hash.split("?")[1] ?? "")), ...patch };
    replaceRoute(hrefOf(["contacts"], next as unknown as Record<string, string>));
  }, []);

  // The URL changed by other means (a link, back/forward): the box follows it.
  useEffect(() => setSearchText(filters.search), [filters.search]);

  // Search as you type: the URL (and so the request) follows the box after a pause. A term of 1–2
  // characters waits for Enter: it cannot use the trigram index, and a rare one reads every contact.
  const typingTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(typingTimer.current), []);
  const onSearchInput = (value: string) => {
    setSearchText(value);
    clearTimeout(typingTimer.current);
    if (searchesAsYouType(value))
      typingTimer.current = setTimeout(() => setFilter({ search: value }), SEARCH_DEBOUNCE_MS);
  };
  const searchNow = () => {
    clearTimeout(typingTimer.current);
    setFilter({ search: searchText });
  };
  const waitsForEnter = !searchesAsYouType(searchText) && searchText !== filters.search;

  // A new view: the request of the previous one is cancelled, the first page fetched (before the
  // browser paints: no frame shows the old rows under the new filters).
  useLayoutEffect(() => {
    rememberListHref(hrefOf(["contacts"], filters as unknown as Record<string, string>));
    controller.current?.abort();
    const ac = new AbortController();
    controller.current = ac;
    setLoading(true);
    setError(null);
    const { path, params: p } = listRequest(filters);
    api<Page<Contact>>(`${path}${query({ ...p, limit: String(PAGE_SIZE) })}`, { signal: ac.signal })
      .then((page) => {
        setRows(page.data);
        setShownSearch(filters.search);
        setCursor(page.next_cursor);
        setHasMore(page.has_more);
        setSelected(new Set());
        setLoading(false);
      })
      .catch((e) => {
        if (isAbort(e)) return;
        setRows([]);
        setShownSearch(filters.search);
        setHasMore(false);
        setError(e);
        setLoading(false);
      });
    return () => ac.abort();
  }, [filterKey]);

  const loadMore = useCallback(async () => {
    if (loadingMore.current || !hasMore || !cursor || loading) return;
    loadingMore.current = true;
    const signal = controller.current?.signal;
    const { path, params: p } = listRequest(filters);
    try {
      const page = await api<Page<Contact>>(
        `${path}${query({ ...p, limit: String(PAGE_SIZE), cursor })}`,
        signal ? { signal } : {},
      );
      setRows((r) => r.concat(page.data));
      setCursor(page.next_cursor);
      setHasMore(page.has_more);
    } catch (e) {
      if (!isAbort(e)) setError(e);
    } finally {
      loadingMore.current = false;
    }
  }, [hasMore, cursor, loading, filterKey]);

  // Infinite scroll: the row after the last one asks for the next page when it comes into view.
  useEffect(() => {
    const el = sentinel.current;
    if (!el || !hasMore) return;
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) void loadMore();
      },
      { rootMargin: "400px" },
    );
    observer.observe(el);
    return () => observer.disconnect();
  }, [hasMore, loadMore, rows.length]);

  const toggle = (id: string) =>
    setSelected((s) => {
      const next = new Set(s);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  const allSelected = rows.length > 0 && rows.every((r) => selected.has(r.id));

  return (
    <main class="page">
      <div class="page-head">
        <h1>Contacts</h1>
        <ExportButtons filters={filters} />
      </div>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          searchNow();
        }}
        aria-label="Filters"
      >
        <label class="grow">
          <span>Search</span>
          <input
            type="search"
            name="search"
            placeholder="Name, email or phone digits"
            value={searchText}
            maxLength={200}
            aria-describedby="search-hint"
            onInput={(e) => onSearchInput(e.currentTarget.value)}
          />
          <small id="search-hint" class="hint search-hint" aria-live="polite">
            {waitsForEnter ? "Press Enter to search" : ""}
          </small>
        </label>
        <label>
          <span>Account</span>
          <select
            name="account"
            value={filters.account}
            onChange={(e) => setFilter({ account: e.currentTarget.value })}
          >
            <option value="">All accounts</option>
            {shared.accounts.map((a) => (
              <option key={a.id} value={a.phone_number_id}>
                {a.name ?? a.phone_number}
              </option>
            ))}
          </select>
        </label>
        <label>
          <span>Label</span>
          <select
            name="label"
            value={filters.label}
            onChange={(e) => setFilter({ label: e.currentTarget.value })}
          >
            <option value="">Any label</option>
            {shared.labels.map((l) => (
              <option key={l.id} value={l.id}>
                {l.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          <span>Marketing</span>
          <select
            name="opt_out"
            value={filters.opt_out}
            onChange={(e) => setFilter({ opt_out: e.currentTarget.value })}
          >
            <option value="">Any</option>
            <option value="false">Subscribed</option>
            <option value="true">Opted out</option>
          </select>
        </label>
        <label>
          <span>Created from</span>
          <input
            type="date"
            name="from"
            value={filters.from}
            onChange={(e) => setFilter({ from: e.currentTarget.value })}
          />
        </label>
        <label>
          <span>to</span>
          <input
            type="date"
            name="to"
            value={filters.to}
            onChange={(e) => setFilter({ to: e.currentTarget.value })}
          />
        </label>
      </form>
      <BulkBar
        shared={shared}
        selected={selected}
        onDone={(labelId, op) => {
          const label = shared.labels.find((l) => l.id === labelId);
          if (!label) return;
          setRows((rs) =>
            rs.map((r) => {
              if (!selected.has(r.id)) return r;
              const without = r.labels.filter((l) => l.id !== labelId);
              return {
                ...r,
                labels:
                  op === "attach"
                    ? [...without, { id: label.id, name: label.name, color: label.color }]
                    : without,
              };
            }),
          );
        }}
        onClear={() => setSelected(new Set())}
      />
      <ErrorBanner error={error} />
      <div class="table-wrap">
        <table
          class="contacts"
          aria-busy={loading}
          aria-rowcount={hasMore ? -1 : rows.length + 1}
          data-search={shownSearch ?? undefined}
        >
          <thead>
            <tr aria-rowindex={1}>
              <th class="sel">
                <input
                  type="checkbox"
                  aria-label="Select all loaded contacts"
                  checked={allSelected}
                  onChange={() => setSelected(allSelected ? new Set() : new Set(rows.map((r) => r.id)))}
                />
              </th>
              <th>Name</th>
              <th class="phone">Phone / ID</th>
              <th class="opt">Account</th>
              <th>Labels</th>
              <th class="opt">Marketing</th>
              <th class="opt">Created</th>
              <th class="opt">Updated</th>
            </tr>
          </thead>
          <tbody ref={body}>
            {loading
              ? Array.from({ length: 8 }, (_, i) => (
                  <tr class="skeleton" key={`s${i}`}>
                    <td colSpan={8}>
                      <span />
                    </td>
                  </tr>
                ))
              : null}
            {!loading && visible.start > 0 ? (
              <tr class="spacer" key="above">
                <td colSpan={8} style={{ height: `${visible.start * visible.rowHeight}px` }} />
              </tr>
            ) : null}
            {loading
              ? null
              : rows.slice(visible.start, visible.end).map((c, i) => (
                  <tr
                    key={c.id}
                    class={selected.has(c.id) ? "crow selected" : "crow"}
                    aria-rowindex={visible.start + i + 2}
                  >
                    <td class="sel">
                      <input
                        type="checkbox"
                        aria-label={`Select ${c.name ?? identityOf(c)}`}
                        checked={selected.has(c.id)}
                        onChange={() => toggle(c.id)}
                      />
                    </td>
                    <td class="name">
                      <a href={hrefOf(["contacts", c.id])}>{c.name ?? <em>No name</em>}</a>
                      <span class="sub mono">{identityOf(c)}</span>
                    </td>
                    <td class="mono phone">{identityOf(c)}</td>
                    <td class="opt">{accountName(shared.accounts, c.whatsapp_account.phone_number_id)}</td>
                    <td class="labels">
                      {c.labels.map((l) => (
                        <LabelChip key={l.id} label={l} />
                      ))}
                    </td>
                    <td class="opt">
                      {c.marketing_opt_out ? <span class="optout">Opted out</span> : "Subscribed"}
                    </td>
                    <td class="opt nowrap">{formatDate(c.created_at)}</td>
                    <td class="opt nowrap">{formatDate(c.updated_at)}</td>
                  </tr>
                ))}
            {!loading && visible.end < rows.length ? (
              <tr class="spacer" key="below">
                <td colSpan={8} style={{ height: `${(rows.length - visible.end) * visible.rowHeight}px` }} />
              </tr>
            ) : null}
            {!loading && rows.length === 0 && !error ? (
              <tr class="empty">
                <td colSpan={8}>No contacts match this view.</td>
              </tr>
            ) : null}
            {!loading && hasMore ? (
              <tr ref={sentinel} class="more">
                <td colSpan={8}>
                  <button type="button" class="link" onClick={() => void loadMore()}>
                    Loading more… (or press to load)
                  </button>
                </td>
              </tr>
            ) : null}
          </tbody>
        </table>
      </div>
      <p class="count" aria-live="polite">
        {loading ? "\u00a0" : `${rows.length.toLocaleString()} shown${hasMore ? ", more below" : ""}`}
      </p>
    </main>
  );
}

function BulkBar(props: {
  shared: Shared;
  selected: Set<string>;
  onDone: (labelId: string, op: "attach" | "detach") => void;
  onClear: () => void;
}) {
  const [labelId, setLabelId] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const count = props.selected.size;
  const run = async (operation: "attach" | "detach") => {
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const ids = [...props.selected];
      let applied = 0;
      let skipped = 0;
      for (let i = 0; i < ids.length; i += BULK_CHUNK) {
        const r = await api<{ data: { applied: number; skipped: number } }>("/contacts/bulk_label", {
          method: "POST",
          body: { contact_ids: ids.slice(i, i + BULK_CHUNK), label_id: labelId, operation },
        });
        applied += r.data.applied;
        skipped += r.data.skipped;
      }
      const name = props.shared.labels.find((l) => l.id === labelId)?.name ?? labelId;
      setDone(
        `${operation === "attach" ? "Attached" : "Removed"} “${name}”: ${applied} changed, ${skipped} already so.`,
      );
      props.onDone(labelId, operation);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class={`bulk${count > 0 ? " active" : ""}`} aria-live="polite">
      {count > 0 ? (
        <>
          <span>
            <strong>{count}</strong> selected
          </span>
          <label>
            <span class="sr">Label to add or remove</span>
            <select name="bulk-label" value={labelId} onChange={(e) => setLabelId(e.currentTarget.value)}>
              <option value="">Choose a label…</option>
              {props.shared.labels.map((l) => (
                <option key={l.id} value={l.id}>
                  {l.name}
                </option>
              ))}
            </select>
          </label>
          <button
            type="button"
            class="primary"
            disabled={!labelId || busy}
            onClick={() => void run("attach")}
          >
            Add label
          </button>
          <button type="button" disabled={!labelId || busy} onClick={() => void run("detach")}>
            Remove label
          </button>
          <button type="button" class="link" onClick={props.onClear}>
            Clear selection
          </button>
        </>
      ) : (
        <span class="hint">Select contacts to label many at once.</span>
      )}
      {done ? <Notice>{done}</Notice> : null}
      <ErrorBanner error={error} />
    </div>
  );
}

/**
 * Export of the current view: fetched with the key in a header (never in a
 * URL), read as a stream into a Blob, then handed to the browser as a download.
 */
function ExportButtons({ filters }: { filters: Filters }) {
  const [progress, setProgress] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const controller = useRef<AbortController | null>(null);
  const run = async (format: "csv" | "ndjson") => {
    controller.current?.abort();
    const ac = new AbortController();
    controller.current = ac;
    setError(null);
    setProgress("Starting export…");
    const { path, params } = listRequest(filters, "/export");
    try {
      let response: Response;
      try {
        response = await fetch(`/v1${path}${query({ ...params, format })}`, {
          headers: authHeaders(),
          signal: ac.signal,
        });
      } catch (e) {
        throw isAbort(e) ? e : networkError(e);
      }
      if (!response.ok || !response.body) throw await errorOf(response);
      const reader = response.body.getReader();
      const parts: Uint8Array[] = [];
      let bytes = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parts.push(value);
        bytes += value.byteLength;
        setProgress(`Exporting… ${formatBytes(bytes)}`);
      }
      const type = format === "csv" ? "text/csv" : "application/x-ndjson";
      const blob = new Blob(parts as BlobPart[], { type });
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = `contacts-${new Date().toISOString().slice(0, 10)}.${format}`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      setProgress(`Exported ${formatBytes(bytes)} as ${format.toUpperCase()}.`);
    } catch (e) {
      if (isAbort(e)) return;
      setProgress(null);
      setError(e instanceof ApiError ? e : networkError(e));
    }
  };
  return (
    <div class="export">
      <button type="button" onClick={() => void run("csv")}>
        Export CSV
      </button>
      <button type="button" onClick={() => void run("ndjson")}>
        Export NDJSON
      </button>
      <span class="progress-text" aria-live="polite">
        {progress ?? ""}
      </span>
      <ErrorBanner error={error} />
    </div>
  );
}
