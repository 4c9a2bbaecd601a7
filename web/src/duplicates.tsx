import { useCallback, useEffect, useState } from "preact/hooks";
import {
  api,
  type Contact,
  type DuplicateCandidate,
  type Envelope,
  type Merge,
  type MergePreview,
  type Page,
  query,
} from "./api.ts";
import { hrefOf } from "./route.ts";
import { ErrorBanner, formatDate, Notice } from "./ui.tsx";

const REASONS: Record<string, string> = {
  same_email: "same email",
  same_phone_other_account: "same phone in another account",
  same_business_scoped_user_id: "same BSUID",
  same_parent_business_scoped_user_id: "same parent BSUID",
  same_name_similar_phone: "same name, similar phone",
};

const who = (c: Contact) => c.name ?? c.profile_name ?? c.phone_number ?? c.username ?? c.id;

export function DuplicatesPage() {
  const [pairs, setPairs] = useState<DuplicateCandidate[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(async (after: string | null) => {
    setLoading(true);
    try {
      const page = await api<Page<DuplicateCandidate>>(
        `/contacts/duplicates${query({ limit: "25", cursor: after ?? undefined })}`,
      );
      setPairs((list) => (after ? [...list, ...page.data] : page.data));
      setCursor(page.has_more ? page.next_cursor : null);
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      setLoading(false);
    }
  }, []);
  useEffect(() => {
    void load(null);
  }, [load]);
  return (
    <main class="page">
      <h1>Duplicates</h1>
      <p class="hint">Pairs of contacts that may be one person. Review a pair to merge it.</p>
      <ErrorBanner error={error} />
      {!loading && pairs.length === 0 && !error ? <p class="hint">No duplicates found.</p> : null}
      <ul class="pairs">
        {pairs.map((p) => (
          <li key={p.id} class="card pair">
            <div class="pair-people">
              {p.contacts.map((c) => (
                <a key={c.id} href={hrefOf(["contacts", c.id])}>
                  {who(c)}
                  <span class="hint"> {c.phone_number ?? c.email ?? ""}</span>
                </a>
              ))}
            </div>
            <div class="row wrap">
              {p.reasons.map((r) => (
                <span key={r} class="chip c-amber">
                  {REASONS[r] ?? r}
                </span>
              ))}
              <a
                class="button"
                href={hrefOf(["duplicates", "merge"], { a: p.contacts[0].id, b: p.contacts[1].id })}
              >
                Review and merge
              </a>
            </div>
          </li>
        ))}
      </ul>
      {loading ? <p class="hint">Loading…</p> : null}
      {cursor && !loading ? (
        <button type="button" onClick={() => void load(cursor)}>
          Load more
        </button>
      ) : null}
    </main>
  );
}

/** The rows of the side-by-side view; `prefer` is the merge's `prefer` key when the field can be chosen. */
const ROWS: Array<{ field: string; label: string; prefer?: boolean }> = [
  { field: "name", label: "Name", prefer: true },
  { field: "profile_name", label: "Profile name", prefer: true },
  { field: "email", label: "Email", prefer: true },
  { field: "username", label: "Username", prefer: true },
  { field: "parent_business_scoped_user_id", label: "Parent BSUID", prefer: true },
  { field: "customer_id", label: "Customer", prefer: true },
  { field: "phone_number", label: "Phone" },
  { field: "business_scoped_user_id", label: "BSUID" },
  { field: "account", label: "Account" },
  { field: "labels", label: "Labels" },
  { field: "marketing_opt_out", label: "Marketing opt-out" },
  { field: "created_at", label: "Created" },
  { field: "metadata", label: "Metadata", prefer: true },
];

function show(value: unknown): string {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "object") return Object.keys(value).length === 0 ? "—" : JSON.stringify(value);
  return String(value);
}

function cell(c: Contact, field: string): string {
  if (field === "account") return c.whatsapp_account.phone_number;
  if (field === "labels") return c.labels.map((l) => l.name).join(", ") || "—";
  if (field === "created_at") return formatDate(c.created_at);
  return show((c as unknown as Record<string, unknown>)[field]);
}

export function MergePage({ a, b }: { a: string; b: string }) {
  const [contacts, setContacts] = useState<Record<string, Contact>>({});
  const [survivor, setSurvivor] = useState(a);
  const [prefer, setPrefer] = useState<Record<string, string>>({});
  const [preview, setPreview] = useState<MergePreview | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [merge, setMerge] = useState<Merge | null>(null);
  const [undone, setUndone] = useState(false);
  const other = survivor === a ? b : a;

  useEffect(() => {
    Promise.all([a, b].map((id) => api<Envelope<Contact>>(`/contacts/${encodeURIComponent(id)}`)))
      .then(([ca, cb]) => {
        if (ca && cb) setContacts({ [a]: ca.data, [b]: cb.data });
      })
      .catch(setError);
  }, [a, b]);

  const body = () => ({
    from: [other],
    prefer,
    expected_updated_at: Object.fromEntries(Object.values(contacts).map((c) => [c.id, c.updated_at])),
  });

  useEffect(() => {
    if (merge || !contacts[a] || !contacts[b]) return;
    const controller = new AbortController();
    api<Envelope<MergePreview>>(`/contacts/${encodeURIComponent(survivor)}/merge?preview=true`, {
      method: "POST",
      body: body(),
      signal: controller.signal,
    })
      .then((r) => {
        setPreview(r.data);
        setError(null);
      })
      .catch((e) => {
        if (!controller.signal.aborted) setError(e);
      });
    return () => controller.abort();
  }, [contacts, survivor, prefer, merge]);

  const chooseSurvivor = (id: string) => {
    setSurvivor(id);
    setPrefer({});
  };
  const doMerge = async () => {
    setBusy(true);
    setError(null);
    try {
      const r = await api<Envelope<Merge>>(`/contacts/${encodeURIComponent(survivor)}/merge`, {
        method: "POST",
        body: body(),
      });
      setMerge(r.data);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const undo = async () => {
    if (!merge) return;
    setBusy(true);
    setError(null);
    try {
      await api(`/merges/${merge.id}/undo`, { method: "POST" });
      setUndone(true);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const ca = contacts[a];
  const cb = contacts[b];
  const result = (field: string) => preview?.fields.find((f) => f.field === field);
  const pick = (field: string, id: string) => setPrefer((p) => ({ ...p, [field]: id }));

  return (
    <main class="page">
      <p>
        <a href="#/duplicates">← Duplicates</a>
      </p>
      <h1>Merge two contacts</h1>
      <ErrorBanner error={error} />
      {merge ? (
        <div class="card stack merge-result">
          {undone ? (
            <Notice>The merge was undone: both contacts are back as they were.</Notice>
          ) : (
            <Notice>
              Merged. <a href={hrefOf(["contacts", merge.survivor_id])}>Open the merged contact</a>
            </Notice>
          )}
          {undone ? (
            <p>
              <a href={hrefOf(["contacts", a])}>Open the first contact</a> ·{" "}
              <a href={hrefOf(["contacts", b])}>Open the second contact</a>
            </p>
          ) : (
            <div class="actions">
              <button type="button" disabled={busy} onClick={() => void undo()}>
                Undo merge
              </button>
              <span class="hint">Possible until {formatDate(merge.undo_until)}.</span>
            </div>
          )}
        </div>
      ) : !ca || !cb ? (
        error ? null : (
          <p class="hint">Loading…</p>
        )
      ) : (
        <>
          <fieldset class="card survivor">
            <legend>Which contact is kept (its id, account and phone stay)?</legend>
            {[ca, cb].map((c, i) => (
              <label key={c.id} class="check">
                <input
                  type="radio"
                  name="survivor"
                  checked={survivor === c.id}
                  onChange={() => chooseSurvivor(c.id)}
                />
                Keep {i === 0 ? "A" : "B"}: {who(c)}
              </label>
            ))}
          </fieldset>
          <div class="table-wrap">
            <table class="merge">
              <caption class="sr-only">The two contacts field by field, and the result</caption>
              <thead>
                <tr>
                  <th scope="col">Field</th>
                  <th scope="col">A{survivor === a ? " (kept)" : ""}</th>
                  <th scope="col">B{survivor === b ? " (kept)" : ""}</th>
                  <th scope="col">Result</th>
                </tr>
              </thead>
              <tbody>
                {ROWS.map((row) => {
                  const r = result(row.field);
                  const resultText =
                    row.field === "metadata"
                      ? show(preview?.metadata.value)
                      : row.field === "labels"
                        ? preview
                          ? `${preview.labels.total} label(s)`
                          : "…"
                        : row.field === "created_at" && r
                          ? formatDate(String(r.value))
                          : r
                            ? show(r.value)
                            : row.prefer || row.field === "marketing_opt_out"
                              ? "…"
                              : `kept: ${cell(survivor === a ? ca : cb, row.field)}`;
                  const source = r?.source ?? (row.field === "metadata" ? prefer.metadata : undefined);
                  return (
                    <tr key={row.field} data-field={row.field}>
                      <th scope="row">{row.label}</th>
                      {[ca, cb].map((c, i) => (
                        <td key={c.id} class={source === c.id ? "chosen" : undefined}>
                          {row.prefer ? (
                            <label class="check">
                              <input
                                type="radio"
                                name={`prefer-${row.field}`}
                                aria-label={`${row.label}: use ${i === 0 ? "A" : "B"}`}
                                checked={
                                  prefer[row.field] === c.id || (!prefer[row.field] && r?.source === c.id)
                                }
                                onChange={() => pick(row.field, c.id)}
                              />
                              <span class="value">{cell(c, row.field)}</span>
                            </label>
                          ) : (
                            <span class="value">{cell(c, row.field)}</span>
                          )}
                        </td>
                      ))}
                      <td class={r?.changed ? "changed" : undefined}>{resultText}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          <p class="hint">
            Metadata keeps every key of both contacts; where both have a key, the kept contact's value wins
            unless you choose the other one. Labels are combined; a contact that opted out of marketing stays
            opted out.
          </p>
          {preview && !preview.can_merge ? (
            <div class="banner error" role="alert">
              {preview.refusals.map((r) => (
                <p key={r.code}>
                  <strong>{r.message}</strong> <span class="code">({r.code})</span>
                </p>
              ))}
            </div>
          ) : null}
          {preview ? (
            <p class="hint">
              {preview.identities_moved} identit{preview.identities_moved === 1 ? "y" : "ies"} of the merged
              contact will lead to the kept one; {preview.labels.added.length} label(s) added.
            </p>
          ) : null}
          <div class="actions">
            <button
              type="button"
              class="primary"
              disabled={busy || !preview?.can_merge}
              onClick={() => void doMerge()}
            >
              {busy ? "Merging…" : "Merge"}
            </button>
          </div>
        </>
      )}
    </main>
  );
}
