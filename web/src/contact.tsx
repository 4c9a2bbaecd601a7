import { useEffect, useState } from "preact/hooks";
import { ApiError, api, type Contact, type Envelope, type IdentityChange, type Page } from "./api.ts";
import type { Shared } from "./main.tsx";
import { hrefOf, lastListHref, navigate } from "./route.ts";
import { Confirm, ErrorBanner, formatDate, LabelChip, Notice } from "./ui.tsx";

/** The PATCH body turning `before` into the edited form (metadata merges, so removed keys are sent as null). */
function patchOf(before: Contact, form: Form): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const name = form.name.trim();
  if (name !== (before.display_name ?? "")) body.name = name === "" ? null : name;
  const email = form.email.trim();
  if (email !== (before.email ?? "")) body.email = email === "" ? null : email;
  const phone = form.phone.trim();
  if (phone !== "" && phone !== (before.phone_number ?? "")) body.phone_number = phone;
  const metadata = JSON.parse(form.metadata.trim() || "{}") as unknown;
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) {
    throw new ApiError(
      400,
      "invalid_metadata",
      'Metadata must be a JSON object, such as {"tier": "gold"}.',
      "metadata",
    );
  }
  const next = metadata as Record<string, unknown>;
  const merged: Record<string, unknown> = {};
  for (const key of Object.keys(before.metadata)) if (!(key in next)) merged[key] = null;
  for (const [key, value] of Object.entries(next)) {
    if (JSON.stringify(before.metadata[key]) !== JSON.stringify(value)) merged[key] = value;
  }
  if (Object.keys(merged).length > 0) body.metadata = merged;
  return body;
}

interface Form {
  name: string;
  email: string;
  phone: string;
  metadata: string;
}

function formOf(c: Contact): Form {
  return {
    name: c.display_name ?? "",
    email: c.email ?? "",
    phone: c.phone_number ?? "",
    metadata: JSON.stringify(c.metadata, null, 2),
  };
}

export function ContactPage({ id, shared }: { id: string; shared: Shared }) {
  const [contact, setContact] = useState<Contact | null>(null);
  const [history, setHistory] = useState<IdentityChange[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [form, setForm] = useState<Form | null>(null);
  const [saveError, setSaveError] = useState<unknown>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [addLabel, setAddLabel] = useState("");

  useEffect(() => {
    const ac = new AbortController();
    setContact(null);
    setHistory(null);
    setError(null);
    setSaved(null);
    setSaveError(null);
    api<Envelope<Contact>>(`/contacts/${encodeURIComponent(id)}`, { signal: ac.signal })
      .then((r) => {
        setContact(r.data);
        setForm(formOf(r.data));
      })
      .catch((e) => {
        if (!(e instanceof DOMException)) setError(e);
      });
    api<Page<IdentityChange>>(`/contacts/${encodeURIComponent(id)}/identity_history?limit=100`, {
      signal: ac.signal,
    })
      .then((r) => setHistory(r.data))
      .catch((e) => {
        if (!(e instanceof DOMException)) setHistory([]);
      });
    return () => ac.abort();
  }, [id]);

  const back = (
    <p>
      <a href={lastListHref()}>← Contacts</a>
    </p>
  );
  if (error) {
    return (
      <main class="page">
        {back}
        <ErrorBanner error={error} />
      </main>
    );
  }
  if (!contact || !form) {
    return (
      <main class="page" aria-busy="true">
        {back}
        <h1 class="placeholder">Loading contact…</h1>
        <div class="card skeleton-card" />
      </main>
    );
  }

  const save = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setSaveError(null);
    setSaved(null);
    try {
      const body = patchOf(contact, form);
      if (Object.keys(body).length === 0) {
        setSaved("Nothing to save: no field changed.");
        return;
      }
      const r = await api<Envelope<Contact>>(`/contacts/${encodeURIComponent(contact.id)}`, {
        method: "PATCH",
        body,
      });
      setContact(r.data);
      setForm(formOf(r.data));
      setSaved("Saved.");
    } catch (e) {
      setSaveError(
        e instanceof SyntaxError
          ? new ApiError(400, "invalid_metadata", `Metadata is not valid JSON: ${e.message}`)
          : e,
      );
    } finally {
      setBusy(false);
    }
  };

  const changeLabel = async (labelId: string, attach: boolean) => {
    setSaveError(null);
    try {
      if (attach)
        await api(`/contacts/${contact.id}/labels`, { method: "POST", body: { label_id: labelId } });
      else await api(`/contacts/${contact.id}/labels/${labelId}`, { method: "DELETE" });
      const r = await api<Envelope<Contact>>(`/contacts/${contact.id}`);
      setContact(r.data);
      setAddLabel("");
    } catch (e) {
      setSaveError(e);
    }
  };

  const remove = async () => {
    setConfirming(false);
    try {
      await api(`/contacts/${contact.id}`, { method: "DELETE" });
      navigate(lastListHref());
    } catch (e) {
      setSaveError(e);
    }
  };

  const existing =
    saveError instanceof ApiError && saveError.code === "contact_exists" ? saveError.existingId : undefined;
  const unattached = shared.labels.filter((l) => !contact.labels.some((x) => x.id === l.id));
  const account = shared.accounts.find((a) => a.phone_number_id === contact.whatsapp_account.phone_number_id);
  const field = (label: string, value: string | null | undefined, mono = false) => (
    <>
      <dt>{label}</dt>
      <dd class={mono ? "mono" : undefined}>{value ?? "—"}</dd>
    </>
  );

  return (
    <main class="page contact">
      {back}
      <div class="page-head">
        <h1>{contact.name ?? contact.phone_number ?? contact.business_scoped_user_id ?? contact.id}</h1>
        <button type="button" class="danger" onClick={() => setConfirming(true)}>
          Delete contact
        </button>
      </div>
      <div class="grid">
        <section class="card" aria-labelledby="fields-title">
          <h2 id="fields-title">Fields</h2>
          <dl>
            {field("ID", contact.id, true)}
            {field("Phone", contact.phone_number, true)}
            {field("WhatsApp ID", contact.wa_id, true)}
            {field("BSUID", contact.business_scoped_user_id, true)}
            {field("Parent BSUID", contact.parent_business_scoped_user_id, true)}
            {field("Username", contact.username)}
            {field("Name", contact.name)}
            {field("Display name", contact.display_name)}
            {field("Profile name", contact.profile_name)}
            {field("Email", contact.email)}
            {field(
              "Account",
              account
                ? `${account.name ?? ""} ${account.phone_number}`.trim()
                : contact.whatsapp_account.phone_number,
            )}
            {field("Source", contact.source)}
            {field("Marketing", contact.marketing_opt_out ? "Opted out" : "Subscribed")}
            {field("Created", formatDate(contact.created_at))}
            {field("Updated", formatDate(contact.updated_at))}
          </dl>
          <h3>Metadata</h3>
          <pre class="metadata">{JSON.stringify(contact.metadata, null, 2)}</pre>
        </section>
        <section class="card" aria-labelledby="edit-title">
          <h2 id="edit-title">Edit</h2>
          <form onSubmit={save} class="stack">
            <label>
              <span>Name</span>
              <input
                name="name"
                value={form.name}
                maxLength={256}
                onInput={(e) => setForm({ ...form, name: e.currentTarget.value })}
              />
            </label>
            <label>
              <span>Email</span>
              <input
                name="email"
                type="email"
                value={form.email}
                onInput={(e) => setForm({ ...form, email: e.currentTarget.value })}
              />
            </label>
            <label>
              <span>Phone</span>
              <input
                name="phone"
                value={form.phone}
                onInput={(e) => setForm({ ...form, phone: e.currentTarget.value })}
              />
            </label>
            <label>
              <span>Metadata (JSON object)</span>
              <textarea
                name="metadata"
                rows={6}
                spellcheck={false}
                value={form.metadata}
                onInput={(e) => setForm({ ...form, metadata: e.currentTarget.value })}
              />
            </label>
            <div class="actions">
              <button type="submit" class="primary" disabled={busy}>
                {busy ? "Saving…" : "Save"}
              </button>
              <button type="button" onClick={() => setForm(formOf(contact))}>
                Reset
              </button>
            </div>
            {saved ? <Notice>{saved}</Notice> : null}
            <ErrorBanner error={saveError} />
            {existing ? (
              <p class="banner warn">
                That identity belongs to another contact:{" "}
                <a href={hrefOf(["contacts", existing])}>open the existing contact {existing}</a>.
              </p>
            ) : null}
          </form>
          <h3>Labels</h3>
          <div class="labels-edit">
            {contact.labels.length === 0 ? <span class="hint">No labels.</span> : null}
            {contact.labels.map((l) => (
              <span key={l.id} class="chip-wrap">
                <LabelChip label={l} />
                <button
                  type="button"
                  class="icon"
                  aria-label={`Remove label ${l.name}`}
                  onClick={() => void changeLabel(l.id, false)}
                >
                  ×
                </button>
              </span>
            ))}
          </div>
          <div class="row">
            <select
              name="add-label"
              aria-label="Label to add"
              value={addLabel}
              onChange={(e) => setAddLabel(e.currentTarget.value)}
            >
              <option value="">Add a label…</option>
              {unattached.map((l) => (
                <option key={l.id} value={l.id}>
                  {l.name}
                </option>
              ))}
            </select>
            <button type="button" disabled={!addLabel} onClick={() => void changeLabel(addLabel, true)}>
              Add
            </button>
          </div>
        </section>
        <section class="card wide" aria-labelledby="history-title">
          <h2 id="history-title">Identity history</h2>
          {history === null ? (
            <p class="hint">Loading…</p>
          ) : history.length === 0 ? (
            <p class="hint">
              No phone number or BSUID change has been reported by WhatsApp for this contact.
            </p>
          ) : (
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th>When</th>
                    <th>Change</th>
                    <th>Phone</th>
                    <th>BSUID</th>
                  </tr>
                </thead>
                <tbody>
                  {history.map((h) => (
                    <tr key={h.id}>
                      <td class="nowrap">{formatDate(h.changed_at)}</td>
                      <td>{h.kind === "user_changed_number" ? "Changed number" : "Changed user id"}</td>
                      <td class="mono">
                        {h.previous_phone_number ?? "—"} → {h.phone_number ?? "—"}
                      </td>
                      <td class="mono">
                        {h.previous_business_scoped_user_id ?? "—"} → {h.business_scoped_user_id ?? "—"}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
      </div>
      <Confirm
        open={confirming}
        title="Delete this contact?"
        confirmLabel="Delete"
        onCancel={() => setConfirming(false)}
        onConfirm={() => void remove()}
      >
        <p>
          {contact.name ?? contact.phone_number} will be deleted for good, with its labels and metadata. This
          cannot be undone.
        </p>
      </Confirm>
    </main>
  );
}
