import { useCallback, useEffect, useState } from "preact/hooks";
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

function Endpoint({
  sub,
  onChanged,
  onError,
}: {
  sub: WebhookSubscription;
  onChanged: (message: string) => Promise<void>;
  onError: (e: unknown) => void;
}) {
  const [confirming, setConfirming] = useState(false);
  const [open, setOpen] = useState(false);
  const [version, setVersion] = useState(0);
  const run = async (work: () => Promise<unknown>, message: string) => {
    try {
      await work();
      await onChanged(message);
    } catch (e) {
      onError(e);
    }
  };
  const ping = () =>
    run(async () => {
      await api(`/webhook_subscriptions/${sub.id}/test`, { method: "POST" });
      setOpen(true);
      setVersion((v) => v + 1);
    }, `Test ping sent to ${sub.url}.`);
  return (
    <li class="card endpoint">
      <div class="endpoint-head">
        <strong class="url">{sub.url}</strong>
        <span class={`chip ${sub.enabled ? "c-green" : "c-gray"}`}>
          {sub.enabled ? "enabled" : `disabled${sub.disabled_reason ? ` (${sub.disabled_reason})` : ""}`}
        </span>
      </div>
      {sub.description ? <p>{sub.description}</p> : null}
      <p class="hint">Events: {sub.events.join(", ")}</p>
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
        <button type="button" class="danger" onClick={() => setConfirming(true)}>
          Delete
        </button>
      </div>
      {open ? <Deliveries sub={sub} version={version} /> : null}
      <Confirm
        open={confirming}
        title={`Delete the endpoint ${sub.url}?`}
        confirmLabel="Delete endpoint"
        onCancel={() => setConfirming(false)}
        onConfirm={() => {
          setConfirming(false);
          void run(() => api(`/webhook_subscriptions/${sub.id}`, { method: "DELETE" }), "Endpoint deleted.");
        }}
      >
        <p>It stops receiving events and its deliveries log is deleted.</p>
      </Confirm>
    </li>
  );
}

export function WebhooksPage() {
  const [subs, setSubs] = useState<WebhookSubscription[] | null>(null);
  const [url, setUrl] = useState("");
  const [description, setDescription] = useState("");
  const [events, setEvents] = useState<string[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const [secret, setSecret] = useState<string | null>(null);
  const reload = useCallback(async () => {
    setSubs(await all<WebhookSubscription>("/webhook_subscriptions"));
  }, []);
  useEffect(() => {
    reload().catch(setError);
  }, [reload]);
  const toggle = (type: string, on: boolean) =>
    setEvents((list) => (on ? [...list, type] : list.filter((t) => t !== type)));
  const create = async (event: Event) => {
    event.preventDefault();
    setError(null);
    setDone(null);
    setSecret(null);
    try {
      const body: Record<string, unknown> = { url: url.trim(), events: events.length > 0 ? events : ["*"] };
      if (description.trim()) body.description = description.trim();
      const created = await api<{ data: WebhookSubscription }>("/webhook_subscriptions", {
        method: "POST",
        body,
      });
      setSecret(created.data.secret ?? null);
      setDone(`Endpoint ${created.data.url} created.`);
      setUrl("");
      setDescription("");
      setEvents([]);
      await reload();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <main class="page">
      <h1>Webhooks</h1>
      <form class="card stack webhook-create" onSubmit={create} aria-label="Add an endpoint">
        <label>
          <span>Endpoint URL</span>
          <input
            name="url"
            type="url"
            required
            placeholder="https://crm.example.com/phonebook"
            value={url}
            onInput={(e) => setUrl(e.currentTarget.value)}
          />
        </label>
        <label>
          <span>Description</span>
          <input
            name="description"
            maxLength={500}
            value={description}
            onInput={(e) => setDescription(e.currentTarget.value)}
          />
        </label>
        <fieldset class="events">
          <legend>Events (none chosen: every event)</legend>
          {EVENT_TYPES.map((t) => (
            <label key={t} class="check">
              <input
                type="checkbox"
                checked={events.includes(t)}
                onChange={(e) => toggle(t, e.currentTarget.checked)}
              />
              {t}
            </label>
          ))}
        </fieldset>
        <button type="submit" class="primary" disabled={url.trim() === ""}>
          Add endpoint
        </button>
      </form>
      {done ? <Notice>{done}</Notice> : null}
      {secret ? (
        <div class="banner warn secret" role="status">
          <p>
            Signing secret — shown only now. Copy it (select it and press Ctrl+C / ⌘C) and store it in your
            receiver:
          </p>
          <input
            class="secret-value"
            aria-label="Signing secret"
            readOnly
            value={secret}
            onFocus={(e) => e.currentTarget.select()}
          />
        </div>
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
