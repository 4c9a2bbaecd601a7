/**
 * The dashboard's only way to the server: the public /v1 API, with the API
 * key from sessionStorage sent as a Bearer header (never in a URL).
 */

const KEY_STORAGE = "phonebook.api_key";

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function storeKey(key: string): void {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function forgetKey(): void {
  sessionStorage.removeItem(KEY_STORAGE);
}

/** An error the API answered with its envelope (or one the dashboard made for a network failure). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly param?: string,
    readonly existingId?: string,
    readonly requestId?: string,
  ) {
    super(message);
  }
}

/** Called when the key stops working (401): the app goes back to sign-in with the message. */
let onUnauthorized: (error: ApiError) => void = () => {};
export function setUnauthorizedHandler(handler: (error: ApiError) => void): void {
  onUnauthorized = handler;
}

export function authHeaders(key = storedKey()): Record<string, string> {
  return key ? { authorization: `Bearer ${key}` } : {};
}

interface ErrorEnvelope {
  error?: { code?: string; message?: string; param?: string; existing_id?: string; request_id?: string };
}

/** Reads an error response into an ApiError (the API's message, or one built from the status). */
export async function errorOf(response: Response): Promise<ApiError> {
  let body: ErrorEnvelope = {};
  try {
    body = (await response.json()) as ErrorEnvelope;
  } catch {
    // Not JSON (a proxy's page): fall back to the status line.
  }
  const e = body.error ?? {};
  return new ApiError(
    response.status,
    e.code ?? "http_error",
    e.message ?? `The server answered ${response.status} ${response.statusText}.`,
    e.param,
    e.existing_id,
    e.request_id,
  );
}

export function networkError(error: unknown): ApiError {
  const detail = error instanceof Error ? ` (${error.message})` : "";
  return new ApiError(0, "network_error", `Could not reach the server: check the connection${detail}.`);
}

export function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === "AbortError";
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
  key?: string;
  headers?: Record<string, string>;
}

/** A /v1 request; resolves to the parsed body, throws ApiError (aborts are re-thrown as they are). */
export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { ...authHeaders(options.key), ...options.headers };
  const init: RequestInit = { method: options.method ?? "GET", headers };
  if (options.signal) init.signal = options.signal;
  if (options.body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  let response: Response;
  try {
    response = await fetch(`/v1${path}`, init);
  } catch (error) {
    if (isAbort(error)) throw error;
    throw networkError(error);
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && options.key === undefined) onUnauthorized(error);
    throw error;
  }
  return (await response.json()) as T;
}

export function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

// ---- The resources the dashboard shows ----

export interface Envelope<T> {
  data: T;
  request_id: string;
}
export interface Page<T> extends Envelope<T[]> {
  has_more: boolean;
  next_cursor: string | null;
}

export interface Label {
  id: string;
  object: "label";
  name: string;
  color: string;
  created_at: string;
  updated_at: string;
}

export interface Account {
  id: string;
  phone_number_id: string;
  phone_number: string;
  name: string | null;
  status: string;
}

export interface Contact {
  id: string;
  phone_number: string | null;
  name: string | null;
  email: string | null;
  metadata: Record<string, unknown>;
  labels: Array<{ id: string; name: string; color: string }>;
  whatsapp_account: { phone_number: string; phone_number_id: string };
  wa_id: string | null;
  business_scoped_user_id: string | null;
  parent_business_scoped_user_id: string | null;
  username: string | null;
  profile_name: string | null;
  display_name: string | null;
  source: string;
  marketing_opt_out: boolean;
  created_at: string;
  updated_at: string;
}

export interface IdentityChange {
  id: string;
  kind: string;
  previous_phone_number: string | null;
  phone_number: string | null;
  previous_business_scoped_user_id: string | null;
  business_scoped_user_id: string | null;
  changed_at: string;
}

export interface ImportResource {
  id: string;
  status: "queued" | "running" | "completed" | "failed";
  format: string;
  mode: string;
  size_bytes: number;
  created_at: string;
  completed_at: string | null;
  total_rows: number;
  processed_rows: number;
  created: number;
  updated: number;
  unchanged: number;
  failed_rows: number;
  errors: Array<{ row: number; line?: number; code: string; message: string; param?: string }>;
  failure: string | null;
}

export const LABEL_COLORS = [
  "gray",
  "red",
  "orange",
  "amber",
  "yellow",
  "lime",
  "green",
  "emerald",
  "teal",
  "sky",
  "blue",
  "violet",
  "pink",
] as const;

/** Every page of a list (labels, accounts: small lists). */
export async function all<T>(path: string): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  for (;;) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api<Page<T>>(
      `${path}${sep}limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
    );
    out.push(...page.data);
    if (!page.has_more || !page.next_cursor) return out;
    cursor = page.next_cursor;
  }
}

export interface WebhookSubscription {
  id: string;
  url: string;
  description: string | null;
  events: string[];
  include_import_contacts: boolean;
  enabled: boolean;
  status: "enabled" | "disabled";
  disabled_reason: string | null;
  /** Until then the secret before the last rotation signs too. */
  previous_secret_expires_at: string | null;
  secret?: string;
  created_at: string;
}

export interface WebhookDelivery {
  id: string;
  subscription_id: string;
  event_type: string;
  status: "pending" | "succeeded" | "failed" | "canceled";
  attempt_count: number;
  last_status_code: number | null;
  last_error: string | null;
  replay_of: string | null;
  created_at: string;
  completed_at: string | null;
}

/** The event types an endpoint can subscribe to (`*` is every type). */
export const EVENT_TYPES = [
  "contact.created",
  "contact.updated",
  "contact.deleted",
  "contact.opted_out",
  "contact.opted_in",
  "contact.merged",
  "contact.unmerged",
  "label.added",
  "label.removed",
  "import.completed",
  "webhook_subscription.disabled",
] as const;

export interface DuplicateCandidate {
  id: string;
  reasons: string[];
  contacts: [Contact, Contact];
  detected_at: string;
}

export interface MergePreview {
  survivor_id: string;
  merged_ids: string[];
  can_merge: boolean;
  refusals: Array<{ code: string; message: string; param?: string }>;
  fields: Array<{ field: string; value: unknown; source: string; changed: boolean }>;
  metadata: { value: Record<string, unknown>; keys_added: string[]; keys_changed: string[] };
  labels: { added: string[]; total: number };
  identities_moved: number;
}

export interface Merge {
  id: string;
  survivor_id: string;
  merged_ids: string[];
  undo_until: string;
  undone_at: string | null;
}
