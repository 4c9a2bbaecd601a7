/** The `error` object of the native envelope (docs/api.md, "Errors"). */
export interface ErrorBody {
  type: string;
  code: string;
  message: string;
  param?: string;
  request_id: string;
  existing_id?: string;
  [extra: string]: unknown;
}

/** Codes the API documents as permanent; others may be added, so `code` stays a string. */
export type KnownErrorCode =
  | "invalid_json"
  | "missing_required_field"
  | "invalid_field_value"
  | "unknown_field"
  | "invalid_phone_number"
  | "invalid_email"
  | "invalid_metadata"
  | "invalid_limit"
  | "invalid_cursor"
  | "invalid_idempotency_key"
  | "missing_api_key"
  | "invalid_api_key"
  | "expired_api_key"
  | "revoked_api_key"
  | "resource_not_found"
  | "route_not_found"
  | "method_not_allowed"
  | "contact_exists"
  | "label_exists"
  | "idempotency_in_progress"
  | "payload_too_large"
  | "unsupported_media_type"
  | "idempotency_key_reuse"
  | "account_required"
  | "no_connected_account"
  | "rate_limit_exceeded"
  | "internal_error"
  | "service_unavailable";

/**
 * An answer of the API other than 2xx. `type`, `code`, `param` and
 * `request_id` come from the error envelope; `status` is the HTTP status.
 * A body that is not the envelope (a proxy's HTML page) still gives an
 * error, with type `api_error` and code `unexpected_response`.
 */
export class PhonebookError extends Error {
  override readonly name = "PhonebookError";
  readonly status: number;
  readonly type: string;
  readonly code: KnownErrorCode | (string & {});
  readonly param: string | undefined;
  readonly request_id: string | undefined;
  /** On 409 `contact_exists`: the id of the contact that has the identity. */
  readonly existing_id: string | undefined;
  /** Seconds to wait, from Retry-After (429, 503). */
  readonly retry_after: number | undefined;
  /** The whole `error` object as sent. */
  readonly body: ErrorBody | undefined;

  constructor(status: number, body: unknown, headers?: Headers) {
    const error = errorBodyOf(body);
    super(error?.message ?? `The API answered ${status} without an error envelope.`);
    this.status = status;
    this.type = error?.type ?? "api_error";
    this.code = error?.code ?? "unexpected_response";
    this.param = error?.param;
    this.request_id = error?.request_id ?? headers?.get("x-request-id") ?? undefined;
    this.existing_id = error?.existing_id;
    this.retry_after = retryAfterSeconds(headers?.get("retry-after") ?? null);
    this.body = error;
  }
}

/** The request never got an answer (connection refused or reset, DNS, timeout) after every retry. */
export class PhonebookConnectionError extends Error {
  override readonly name = "PhonebookConnectionError";
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
  }
}

function errorBodyOf(body: unknown): ErrorBody | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const error = (body as { error?: unknown }).error;
  if (typeof error !== "object" || error === null) return undefined;
  const candidate = error as Partial<ErrorBody>;
  if (typeof candidate.code !== "string" || typeof candidate.type !== "string") return undefined;
  return candidate as ErrorBody;
}

/** Retry-After as seconds: a number of seconds or an HTTP date. */
export function retryAfterSeconds(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, (at - now) / 1000);
}
