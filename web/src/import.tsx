import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, authHeaders, type Envelope, type ImportResource, type Page } from "./api.ts";
import type { Shared } from "./main.tsx";
import { ErrorBanner, formatBytes, formatDate, Notice } from "./ui.tsx";

/** The API's limit for one import file (POST /v1/imports): refused here before any byte is sent. */
export const MAX_IMPORT_BYTES = 100 * 1024 * 1024;
const POLL_MS = 500;

type Format = "csv" | "ndjson";

const FIELD_COLUMNS: Record<string, string> = {
  phone_number: "phone number",
  phone: "phone number",
  name: "name (display name)",
  display_name: "display name",
  email: "email",
  labels: "labels (ids or names, separated by |)",
  metadata: "metadata (JSON object, merged)",
  business_scoped_user_id: "BSUID",
};
const IGNORED = new Set([
  "id",
  "object",
  "wa_id",
  "whatsapp_account",
  "phone_number_id",
  "account_phone_number",
  "source",
  "marketing_opt_out",
  "created_at",
  "updated_at",
  "profile_name",
  "username",
  "parent_business_scoped_user_id",
]);

/** Same matching as the server: case-insensitive, spaces and dashes read as underscores. */
function fieldKey(header: string): string {
  return header
    .trim()
    .toLowerCase()
    .replace(/[\s-]+/g, "_");
}

export function mappingOf(columns: string[]): Array<{ column: string; target: string }> {
  return columns.map((column) => {
    const key = fieldKey(column);
    const known = FIELD_COLUMNS[key];
    if (known) return { column, target: known };
    if (IGNORED.has(key)) return { column, target: "ignored (read-only field of an export)" };
    return { column, target: `metadata “${column.trim()}”` };
  });
}

/** The first CSV record (the header), quotes and doubled quotes understood. */
function csvHeader(text: string): string[] {
  const out: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") {
      out.push(cell);
      cell = "";
    } else if (ch === "\n" || ch === "\r") break;
    else cell += ch;
  }
  out.push(cell);
  return out.map((c) => c.replace(/^\uFEFF/, ""));
}

interface Checked {
  file: File;
  format: Format;
  columns: string[];
}

/** Refuses what the server would refuse, before uploading: wrong kind, too large, unreadable header. */
export async function checkFile(file: File): Promise<Checked> {
  const ext = file.name.toLowerCase().split(".").pop() ?? "";
  const format: Format | undefined =
    ext === "csv" || file.type === "text/csv"
      ? "csv"
      : ext === "ndjson" || ext === "jsonl" || file.type === "application/x-ndjson"
        ? "ndjson"
        : undefined;
  if (!format) {
    throw new ApiError(
      415,
      "unsupported_media_type",
      `“${file.name}” is not a CSV or NDJSON file. Choose a .csv, .ndjson or .jsonl file.`,
    );
  }
  if (file.size > MAX_IMPORT_BYTES) {
    throw new ApiError(
      413,
      "payload_too_large",
      `“${file.name}” is ${formatBytes(file.size)}; an import takes at most 100 MiB. Split the file and import the parts.`,
    );
  }
  if (file.size === 0) throw new ApiError(400, "invalid_field_value", `“${file.name}” is empty.`);
  const head = new Uint8Array(await file.slice(0, 64 * 1024).arrayBuffer());
  if (head.includes(0)) {
    throw new ApiError(
      415,
      "unsupported_media_type",
      `“${file.name}” is a binary file, not CSV or NDJSON text.`,
    );
  }
  const text = new TextDecoder().decode(head);
  if (format === "csv") return { file, format, columns: csvHeader(text).filter((c) => c.trim() !== "") };
  const firstLine = text.split(/\r?\n/).find((l) => l.trim() !== "") ?? "";
  try {
    const first = JSON.parse(firstLine) as unknown;
    if (typeof first !== "object" || first === null || Array.isArray(first)) throw new Error("not an object");
    return { file, format, columns: Object.keys(first) };
  } catch {
    throw new ApiError(
      400,
      "invalid_json",
      `The first line of “${file.name}” is not a JSON object: an NDJSON file has one JSON object per line.`,
    );
  }
}

function randomKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `dash-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * Uploads with XMLHttpRequest (fetch reports no upload progress). The
 * Idempotency-Key is the file's: retrying after a lost connection cannot start
 * the same import twice.
 */
function upload(
  checked: Checked,
  params: URLSearchParams,
  idempotencyKey: string,
  onProgress: (sent: number) => void,
  signal: AbortSignal,
): Promise<ImportResource> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/v1/imports?${params}`);
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader("content-type", checked.format === "csv" ? "text/csv" : "application/x-ndjson");
    xhr.setRequestHeader("idempotency-key", idempotencyKey);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onerror = () =>
      reject(
        new ApiError(
          0,
          "network_error",
          "The connection was lost during the upload. Nothing of this upload was imported; contacts imported before are kept. Try again.",
        ),
      );
    xhr.onabort = () => reject(new DOMException("aborted", "AbortError"));
    xhr.onload = () => {
      let body: { data?: ImportResource; error?: { code?: string; message?: string; param?: string } } = {};
      try {
        body = JSON.parse(xhr.responseText) as typeof body;
      } catch {
        // not JSON
      }
      if (xhr.status >= 200 && xhr.status < 300 && body.data) resolve(body.data);
      else {
        const e = body.error ?? {};
        reject(
          new ApiError(
            xhr.status,
            e.code ?? "http_error",
            e.message ?? `The server answered ${xhr.status}.`,
            e.param,
          ),
        );
      }
    };
    signal.addEventListener("abort", () => xhr.abort());
    xhr.send(checked.file);
  });
}

function errorsCsv(resource: ImportResource): string {
  const quote = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
  const lines = ["row,line,code,param,message"];
  for (const e of resource.errors)
    lines.push([String(e.row), String(e.line ?? ""), e.code, e.param ?? "", quote(e.message)].join(","));
  return `${lines.join("\n")}\n`;
}

export function ImportPage({ shared }: { shared: Shared }) {
  const connected = shared.accounts.filter((a) => a.status === "connected");
  const [account, setAccount] = useState(connected[0]?.phone_number_id ?? "");
  const [mode, setMode] = useState<"create" | "upsert">("upsert");
  const [checked, setChecked] = useState<Checked | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [sent, setSent] = useState<number | null>(null);
  const [resource, setResource] = useState<ImportResource | null>(null);
  const [pollProblem, setPollProblem] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);
  const idempotencyKey = useRef(randomKey());
  const controller = useRef<AbortController | null>(null);
  const input = useRef<HTMLInputElement>(null);

  useEffect(() => () => controller.current?.abort(), []);

  // The organisation's latest imports: one started before a lost connection, a reload or an
  // expired key is found here, still running or finished, with its counts.
  const [recent, setRecent] = useState<ImportResource[] | null>(null);
  const loadRecent = useCallback(async () => {
    try {
      setRecent((await api<Page<ImportResource>>("/imports?limit=10")).data);
    } catch {
      // The list is a convenience; the page works without it.
    }
  }, []);
  useEffect(() => {
    void loadRecent();
  }, [loadRecent, resource?.id, resource?.status]);

  const show = async (id: string) => {
    controller.current?.abort();
    const ac = new AbortController();
    controller.current = ac;
    setError(null);
    setChecked(null);
    setSent(null);
    try {
      const r = await api<Envelope<ImportResource>>(`/imports/${id}`, { signal: ac.signal });
      setResource(r.data);
      if (r.data.status !== "completed" && r.data.status !== "failed") await poll(id, ac.signal);
    } catch (e) {
      if (!(e instanceof DOMException && e.name === "AbortError")) setError(e);
    }
  };

  const choose = async (file: File | undefined) => {
    if (!file) return;
    setError(null);
    setResource(null);
    setSent(null);
    setChecked(null);
    try {
      setChecked(await checkFile(file));
      idempotencyKey.current = randomKey();
    } catch (e) {
      setError(e);
    }
  };

  const poll = async (id: string, signal: AbortSignal) => {
    for (;;) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      if (signal.aborted) return;
      try {
        const r = await api<Envelope<ImportResource>>(`/imports/${id}`, { signal });
        setPollProblem(null);
        setResource(r.data);
        if (r.data.status === "completed" || r.data.status === "failed") return;
      } catch (e) {
        if (signal.aborted) return;
        if (e instanceof ApiError && e.status === 401) return;
        // The import goes on on the server; keep asking.
        setPollProblem(
          `${e instanceof Error ? e.message : String(e)} The import goes on on the server; retrying…`,
        );
      }
    }
  };

  const start = async () => {
    if (!checked) return;
    controller.current?.abort();
    const ac = new AbortController();
    controller.current = ac;
    setError(null);
    setResource(null);
    setSent(0);
    try {
      const params = new URLSearchParams({ mode });
      if (account) params.set("phone_number_id", account);
      const created = await upload(checked, params, idempotencyKey.current, setSent, ac.signal);
      setResource(created);
      if (created.status !== "completed" && created.status !== "failed") await poll(created.id, ac.signal);
    } catch (e) {
      if (e instanceof DOMException && e.name === "AbortError") return;
      setSent(null);
      setError(e);
    }
  };

  const uploading = sent !== null && resource === null && !error;
  const total = resource?.total_rows ?? 0;
  const pct = resource
    ? resource.status === "completed"
      ? 100
      : total > 0
        ? Math.floor((resource.processed_rows / total) * 100)
        : 0
    : 0;
  const download = () => {
    if (!resource) return;
    const url = URL.createObjectURL(new Blob([errorsCsv(resource)], { type: "text/csv" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = `${resource.id}-errors.csv`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  };

  return (
    <main class="page">
      <h1>Import contacts</h1>
      {connected.length === 0 ? (
        <div class="banner warn" role="alert">
          No connected WhatsApp account: an operator must connect one before contacts can be imported.
        </div>
      ) : null}
      <div class="card stack">
        <div class="row wrap">
          <label>
            <span>Account</span>
            <select name="import-account" value={account} onChange={(e) => setAccount(e.currentTarget.value)}>
              {connected.map((a) => (
                <option key={a.id} value={a.phone_number_id}>
                  {a.name ? `${a.name} (${a.phone_number})` : a.phone_number}
                </option>
              ))}
            </select>
          </label>
          <label>
            <span>Existing contacts</span>
            <select
              name="import-mode"
              value={mode}
              onChange={(e) => setMode(e.currentTarget.value as "create" | "upsert")}
            >
              <option value="upsert">Update them (upsert)</option>
              <option value="create">Keep them; report a row error (create)</option>
            </select>
          </label>
        </div>
        <label
          class={`drop${dragging ? " over" : ""}`}
          onDragOver={(e) => {
            e.preventDefault();
            setDragging(true);
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={(e) => {
            e.preventDefault();
            setDragging(false);
            void choose(e.dataTransfer?.files[0]);
          }}
        >
          <strong>Drop a CSV or NDJSON file here</strong>
          <span>or choose one (up to 100 MiB)</span>
          <input
            ref={input}
            type="file"
            name="file"
            accept=".csv,.ndjson,.jsonl,text/csv,application/x-ndjson"
            onChange={(e) => void choose(e.currentTarget.files?.[0])}
          />
        </label>
        <ErrorBanner error={error} />
        {checked ? (
          <section aria-labelledby="mapping-title">
            <h2 id="mapping-title">
              {checked.file.name}{" "}
              <span class="hint">
                ({formatBytes(checked.file.size)}, {checked.format.toUpperCase()})
              </span>
            </h2>
            <table class="mapping">
              <thead>
                <tr>
                  <th>{checked.format === "csv" ? "Column" : "Key (first line)"}</th>
                  <th>Imported as</th>
                </tr>
              </thead>
              <tbody>
                {mappingOf(checked.columns).map((m) => (
                  <tr key={m.column}>
                    <td class="mono">{m.column}</td>
                    <td>{m.target}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            <div class="actions">
              <button
                type="button"
                class="primary"
                disabled={
                  uploading ||
                  !account ||
                  (resource !== null && resource.status !== "completed" && resource.status !== "failed")
                }
                onClick={() => void start()}
              >
                {error ? "Try again" : "Start import"}
              </button>
            </div>
          </section>
        ) : null}
        {uploading ? (
          <div>
            <p>
              Uploading… {formatBytes(sent ?? 0)} of {formatBytes(checked?.file.size ?? 0)}
            </p>
            <progress max={checked?.file.size ?? 1} value={sent ?? 0} aria-label="Upload" />
          </div>
        ) : null}
        {resource ? (
          <section aria-labelledby="progress-title" class="import-progress">
            <h2 id="progress-title">
              Import {resource.id}: <span class={`status s-${resource.status}`}>{resource.status}</span>
            </h2>
            <progress max={100} value={pct} aria-label="Import progress" />
            <p aria-live="polite">
              {resource.processed_rows.toLocaleString()} of {total.toLocaleString()} rows processed ({pct}%)
            </p>
            {pollProblem ? <div class="banner warn">{pollProblem}</div> : null}
            <dl class="counts">
              <dt>Created</dt>
              <dd>{resource.created.toLocaleString()}</dd>
              <dt>Updated</dt>
              <dd>{resource.updated.toLocaleString()}</dd>
              <dt>Unchanged</dt>
              <dd>{resource.unchanged.toLocaleString()}</dd>
              <dt>Failed rows</dt>
              <dd>{resource.failed_rows.toLocaleString()}</dd>
            </dl>
            {resource.status === "failed" ? (
              <ErrorBanner
                error={
                  new ApiError(
                    0,
                    "import_failed",
                    `The import failed: ${resource.failure ?? "unknown reason"}. Rows committed before are kept.`,
                  )
                }
              />
            ) : null}
            {resource.status === "completed" ? <Notice>Import finished.</Notice> : null}
            {resource.errors.length > 0 ? (
              <>
                <div class="row">
                  <h3>Row errors</h3>
                  <button type="button" onClick={download}>
                    Download row errors (CSV)
                  </button>
                </div>
                <div class="table-wrap errors">
                  <table>
                    <thead>
                      <tr>
                        <th>Row</th>
                        <th>Code</th>
                        <th>Message</th>
                      </tr>
                    </thead>
                    <tbody>
                      {resource.errors.slice(0, 100).map((e) => (
                        <tr key={e.row}>
                          <td>{e.row}</td>
                          <td class="mono">{e.code}</td>
                          <td>{e.message}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
                {resource.errors.length > 100 ? (
                  <p class="hint">First 100 shown; the download has all {resource.errors.length}.</p>
                ) : null}
              </>
            ) : null}
          </section>
        ) : null}
      </div>
      <section class="card recent-imports" aria-labelledby="recent-title">
        <div class="row">
          <h2 id="recent-title">Recent imports</h2>
          <button type="button" onClick={() => void loadRecent()}>
            Refresh
          </button>
        </div>
        {recent === null ? (
          <p class="hint">Loading…</p>
        ) : recent.length === 0 ? (
          <p class="hint">No imports yet.</p>
        ) : (
          <div class="table-wrap">
            <table class="imports">
              <thead>
                <tr>
                  <th scope="col">Started</th>
                  <th scope="col">File</th>
                  <th scope="col">Status</th>
                  <th scope="col">Rows</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {recent.map((r) => (
                  <tr key={r.id} data-import={r.id}>
                    <td class="nowrap">{formatDate(r.created_at)}</td>
                    <td>
                      {r.format.toUpperCase()}, {formatBytes(r.size_bytes)}
                    </td>
                    <td>
                      <span class={`pill s-${r.status}`}>{r.status}</span>
                    </td>
                    <td>
                      {r.processed_rows.toLocaleString()} of {r.total_rows.toLocaleString()}: {r.created}{" "}
                      created, {r.updated} updated, {r.failed_rows} failed
                    </td>
                    <td>
                      <button type="button" onClick={() => void show(r.id)}>
                        Show
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </main>
  );
}
