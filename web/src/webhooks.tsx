import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import {
  all,
  api,
  EVENT_TYPES,
  type Page,
  query,
  type WebhookDelivery,
  type WebhookSubscription,
} from "./api.ts";
import { Confirm, ErrorBanner, formatDate, Notice } from "./ui.tsx";

/** The recent deliveries of one endpoint, refreshed every second while one is pending. */
function Deliveries({ sub, version }: { sub: WebhookSubscription; version: number }) {
  const [rows, setRows] = useState<WebhookDelivery[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const load = useCallback(async () => {
    try {
      const page = await api<Page<WebhookDelivery>>(
        `/webhook_deliveries${query({ subscription: sub.id, limit: "20" })}`,
      );
      setRows(page.data);
      setError(null);
    } catch (e) {
      setError(e);
    }
  }, [sub.id]);
  useEffect(() => {
    void load();
  }, [load, version, tick]);
  const pending = rows?.some((d) => d.status === "pending") ?? false;
  useEffect(() => {
    if (!pending) return;
    const timer = setTimeout(() => setTick((t) => t + 1), 1000);
    return () => clearTimeout(timer);
  }, [pending, rows]);
  const replay = async (d: WebhookDelivery) => {
    setDone(null);
    try {
      await api(`/webhook_deliveries/${d.id}/replay`, { method: "POST" });
      setDone(`Delivery of ${d.event_type} queued again.`);
      await load();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <section class="deliveries" aria-label={`Recent deliveries to ${sub.url}`}>
      <div class="row wrap">
        <h3>Recent deliveries</h3>
        <button type="button" onClick={() => void load()}>
          Refresh
        </button>
      </div>
      {done ? <Notice>{done}</Notice> : null}
      <ErrorBanner error={error} />
      {rows === null ? (
        <p class="hint">Loading…</p>
      ) : rows.length === 0 ? (
        <p class="hint">No deliveries yet. Send a test ping.</p>
      ) : (
        <div class="table-wrap">
          <table class="deliveries">
            <thead>
              <tr>
                <th scope="col">Event</th>
                <th scope="col">Status</th>
                <th scope="col">Code</th>
                <th scope="col">Time</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((d) => (
                <tr key={d.id} data-status={d.status}>
                  <td>
                    {d.event_type}
                    {d.replay_of ? <span class="hint"> (replay)</span> : null}
                  </td>
                  <td class={`dstatus s-${d.status}`} title={d.last_error ?? undefined}>
                    {d.status}
                    {d.attempt_count > 1 ? ` (${d.attempt_count} attempts)` : ""}
                  </td>
                  <td>{d.last_status_code ?? "—"}</td>
                  <td>{formatDate(d.completed_at ?? d.created_at)}</td>
                  <td>
                    <button type="button" onClick={() => void replay(d)}>
                      Replay
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

/** The values of the add / edit form of an endpoint. */
interface EndpointInput {
  url: string;
  description: string;
  /** Empty: every event (`["*"]`). */
  events: string[];
  include_import_contacts: boolean;
}

function inputOf(sub: WebhookSubscription): EndpointInput {
  return {
    url: sub.url,
    description: sub.description ?? "",
    events: sub.events.includes("*") ? [] : sub.events,
    include_import_contacts: sub.include_import_contacts,
  };
}

const EMPTY: EndpointInput = { url: "", description: "", events: [], include_import_contacts: false };

/** URL, description, events (checkboxes), and whether imports send every contact: to add or to edit. */
function EndpointForm(props: {
  initial: EndpointInput;
  title: string;
  submitLabel: string;
  onSubmit: (input: EndpointInput) => Promise<boolean>;
  onCancel?: () => void;
}) {
  const [v, setV] = useState<EndpointInput>(props.initial);
  const [busy, setBusy] = useState(false);
  const id = useRef(`ep${Math.random().toString(36).slice(2, 8)}`).current;
  const toggle = (type: string, on: boolean) =>
    setV((x) => ({ ...x, events: on ? [...x.events, type] : x.events.filter((t) => t !== type) }));
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    try {
      if (await props.onSubmit(v)) setV(props.initial);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card stack webhook-form" onSubmit={submit} aria-label={props.title}>
      <label>
        <span>Endpoint URL</span>
        <input
          name="url"
          type="url"
          required
          placeholder="https://crm.example.com/phonebook"
          value={v.url}
          onInput={(e) => setV({ ...v, url: e.currentTarget.value })}
        />
      </label>
      <label>
        <span>Description</span>
        <input
          name="description"
          maxLength={500}
          value={v.description}
          onInput={(e) => setV({ ...v, description: e.currentTarget.value })}
        />
      </label>
      <fieldset class="events">
        <legend>Events (none chosen: every event)</legend>
        {EVENT_TYPES.map((t) => (
          <label key={t} class="check">
            <input
              type="checkbox"
              checked={v.events.includes(t)}
              onChange={(e) => toggle(t, e.currentTarget.checked)}
            />
            {t}
          </label>
        ))}
      </fieldset>
      <label class="check">
        <input
          type="checkbox"
          name="include_import_contacts"
          aria-describedby={`${id}-imports`}
          checked={v.include_import_contacts}
          onChange={(e) => setV({ ...v, include_import_contacts: e.currentTarget.checked })}
        />
        Send every contact of an import
      </label>
      <p class="hint" id={`${id}-imports`}>
        Otherwise an import sends one <code>import.completed</code> with its counts; ticked, each imported
        contact is also sent (<code>contact.created</code>, <code>contact.updated</code>,{" "}
        <code>label.added</code>) — up to one event per row.
      </p>
      <div class="actions">
        <button type="submit" class="primary" disabled={busy || v.url.trim() === ""}>
          {props.submitLabel}
        </button>
        {props.onCancel ? (
          <button type="button" onClick={props.onCancel}>
            Cancel
          </button>
        ) : null}
      </div>
    </form>
  );
}

/** A signing secret, shown once: a read-only box that selects itself on focus. */
function SecretBox({ secret, children }: { secret: string; children: ComponentChildren }) {
  return (
    <div class="banner warn secret" role="status">
      {children}
      <input
        class="secret-value"
        aria-label="Signing secret"
        readOnly
        value={secret}
        onFocus={(e) => e.currentTarget.select()}
      />
    </div>
  );
}

function Endpoint({
  sub,
  onChanged,
  onError,
}: {
  sub: WebhookSubscription;
  onChanged: (message: string) => Promise<void>;
  onError: (e: unknown) => void;
}) {
  const [confirming, setConfirming] = useState<"delete" | "rotate" | null>(null);
  const [open, setOpen] = useState(false);
  const [editing, setEditing] = useState(false);
  const [rotated, setRotated] = useState<WebhookSubscription | null>(null);
  const [version, setVersion] = useState(0);
  const run = async (work: () => Promise<unknown>, message: string): Promise<boolean> => {
    try {
      await work();
      await onChanged(message);
      return true;
    } catch (e) {
      onError(e);
      return false;
    }
  };
  const ping = () =>
    run(async () => {
      await api(`/webhook_subscriptions/${sub.id}/test`, { method: "POST" });
      setOpen(true);
      setVersion((v) => v + 1);
    }, `Test ping sent to ${sub.url}.`);
  const save = async (v: EndpointInput): Promise<boolean> => {
    const before = inputOf(sub);
    const body: Record<string, unknown> = {};
    if (v.url.trim() !== before.url) body.url = v.url.trim();
    if (v.description.trim() !== before.description) body.description = v.description.trim() || null;
    const events = (list: string[]) => [...list].sort().join(",");
    if (events(v.events) !== events(before.events)) body.events = v.events.length > 0 ? v.events : ["*"];
    if (v.include_import_contacts !== before.include_import_contacts)
      body.include_import_contacts = v.include_import_contacts;
    if (Object.keys(body).length === 0) {
      setEditing(false);
      await onChanged("Nothing changed.");
      return true;
    }
    const ok = await run(
      () => api(`/webhook_subscriptions/${sub.id}`, { method: "PATCH", body }),
      `Endpoint ${v.url.trim()} saved.`,
    );
    if (ok) setEditing(false);
    return ok;
  };
  const rotate = () =>
    run(async () => {
      const r = await api<{ data: WebhookSubscription }>(`/webhook_subscriptions/${sub.id}/rotate_secret`, {
        method: "POST",
      });
      setRotated(r.data);
    }, `New signing secret for ${sub.url}.`);
  return (
    <li class="card endpoint">
      <div class="endpoint-head">
        <strong class="url">{sub.url}</strong>
        <span class={`chip ${sub.enabled ? "c-green" : "c-gray"}`}>
          {sub.enabled ? "enabled" : `disabled${sub.disabled_reason ? ` (${sub.disabled_reason})` : ""}`}
        </span>
      </div>
      {sub.description ? <p>{sub.description}</p> : null}
      <p class="hint">
        Events: {sub.events.join(", ")} · Imports:{" "}
        {sub.include_import_contacts ? "every contact and import.completed" : "import.completed only"}
      </p>
      {sub.previous_secret_expires_at && !rotated ? (
        <p class="hint">
          The previous signing secret also signs until {formatDate(sub.previous_secret_expires_at)}.
        </p>
      ) : null}
      {rotated?.secret ? (
        <SecretBox secret={rotated.secret}>
          <p>
            New signing secret — shown only now. Copy it (select it and press Ctrl+C / ⌘C) into your receiver.
            The old secret keeps signing alongside it for 24 hours
            {rotated.previous_secret_expires_at
              ? `, until ${formatDate(rotated.previous_secret_expires_at)}`
              : ""}
            : requests carry both signatures until then, so nothing is rejected while you switch.
          </p>
        </SecretBox>
      ) : null}
      <div class="actions">
        <button
          type="button"
          onClick={() =>
            void run(
              () =>
                api(`/webhook_subscriptions/${sub.id}`, { method: "PATCH", body: { enabled: !sub.enabled } }),
              `Endpoint ${sub.enabled ? "disabled" : "enabled"}.`,
            )
          }
        >
          {sub.enabled ? "Disable" : "Enable"}
        </button>
        <button type="button" onClick={() => void ping()}>
          Send test ping
        </button>
        <button type="button" aria-expanded={open} onClick={() => setOpen(!open)}>
          {open ? "Hide deliveries" : "Show deliveries"}
        </button>
        <button type="button" aria-expanded={editing} onClick={() => setEditing(!editing)}>
          Edit
        </button>
        <button type="button" onClick={() => setConfirming("rotate")}>
          Rotate secret
        </button>
        <button type="button" class="danger" onClick={() => setConfirming("delete")}>
          Delete
        </button>
      </div>
      {editing ? (
        <EndpointForm
          initial={inputOf(sub)}
          title={`Edit the endpoint ${sub.url}`}
          submitLabel="Save endpoint"
          onSubmit={save}
          onCancel={() => setEditing(false)}
        />
      ) : null}
      {open ? <Deliveries sub={sub} version={version} /> : null}
      <Confirm
        open={confirming === "delete"}
        title={`Delete the endpoint ${sub.url}?`}
        confirmLabel="Delete endpoint"
        onCancel={() => setConfirming(null)}
        onConfirm={() => {
          setConfirming(null);
          void run(() => api(`/webhook_subscriptions/${sub.id}`, { method: "DELETE" }), "Endpoint deleted.");
        }}
      >
        <p>It stops receiving events and its deliveries log is deleted.</p>
      </Confirm>
      <Confirm
        open={confirming === "rotate"}
        title={`New signing secret for ${sub.url}?`}
        confirmLabel="Rotate secret"
        danger={false}
        onCancel={() => setConfirming(null)}
        onConfirm={() => {
          setConfirming(null);
          void rotate();
        }}
      >
        <p>
          The new secret is shown once. The current one keeps signing alongside it for 24 hours, then stops:
          update your receiver within that time.
        </p>
      </Confirm>
    </li>
  );
}

export function WebhooksPage() {
  const [subs, setSubs] = useState<WebhookSubscription[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const [secret, setSecret] = useState<string | null>(null);
  const reload = useCallback(async () => {
    setSubs(await all<WebhookSubscription>("/webhook_subscriptions"));
  }, []);
  useEffect(() => {
    reload().catch(setError);
  }, [reload]);
  const create = async (v: EndpointInput): Promise<boolean> => {
    setError(null);
    setDone(null);
    setSecret(null);
    try {
      const body: Record<string, unknown> = {
        url: v.url.trim(),
        events: v.events.length > 0 ? v.events : ["*"],
      };
      if (v.description.trim()) body.description = v.description.trim();
      if (v.include_import_contacts) body.include_import_contacts = true;
      const created = await api<{ data: WebhookSubscription }>("/webhook_subscriptions", {
        method: "POST",
        body,
      });
      setSecret(created.data.secret ?? null);
      setDone(`Endpoint ${created.data.url} created.`);
      await reload();
      return true;
    } catch (e) {
      setError(e);
      return false;
    }
  };
  return (
    <main class="page">
      <h1>Webhooks</h1>
      <EndpointForm initial={EMPTY} title="Add an endpoint" submitLabel="Add endpoint" onSubmit={create} />
      {done ? <Notice>{done}</Notice> : null}
      {secret ? (
        <SecretBox secret={secret}>
          <p>
            Signing secret — shown only now. Copy it (select it and press Ctrl+C / ⌘C) and store it in your
            receiver:
          </p>
        </SecretBox>
      ) : null}
      <ErrorBanner error={error} />
      {subs === null ? (
        <p class="hint">Loading…</p>
      ) : subs.length === 0 ? (
        <p class="hint">No endpoints yet.</p>
      ) : (
        <ul class="endpoints">
          {subs.map((s) => (
            <Endpoint
              key={s.id}
              sub={s}
              onError={(e) => {
                setDone(null);
                setError(e);
              }}
              onChanged={async (m) => {
                setError(null);
                setDone(m);
                await reload();
              }}
            />
          ))}
        </ul>
      )}
    </main>
  );
}
