/**
 * The one catalogue of error codes (spec §2). Domain code throws `ApiError`
 * with a code; each HTTP surface renders it in its own shape, in one place.
 */
export const ERROR_CATALOGUE = {
  invalid_json: { status: 400, type: "invalid_request_error" },
  missing_required_field: { status: 400, type: "invalid_request_error" },
  invalid_field_value: { status: 400, type: "invalid_request_error" },
  unknown_field: { status: 400, type: "invalid_request_error" },
  invalid_phone_number: { status: 400, type: "invalid_request_error" },
  invalid_email: { status: 400, type: "invalid_request_error" },
  invalid_metadata: { status: 400, type: "invalid_request_error" },
  invalid_limit: { status: 400, type: "invalid_request_error" },
  invalid_cursor: { status: 400, type: "invalid_request_error" },
  invalid_idempotency_key: { status: 400, type: "invalid_request_error" },
  legacy_offset_pagination_limit_exceeded: { status: 400, type: "invalid_request_error" },
  // A request Node's HTTP parser cannot read (malformed or smuggling-shaped framing).
  malformed_request: { status: 400, type: "invalid_request_error" },
  // A row of an import file that cannot be read (reported in the import's errors, not as an HTTP error).
  malformed_row: { status: 400, type: "invalid_request_error" },
  // A row of an import file that is not UTF-8 text (e.g. a Latin-1 file sent without encoding=latin1).
  invalid_encoding: { status: 400, type: "invalid_request_error" },
  missing_api_key: { status: 401, type: "authentication_error" },
  invalid_api_key: { status: 401, type: "authentication_error" },
  expired_api_key: { status: 401, type: "authentication_error" },
  revoked_api_key: { status: 401, type: "authentication_error" },
  invalid_signature: { status: 401, type: "authentication_error" },
  forbidden: { status: 403, type: "authentication_error" },
  resource_not_found: { status: 404, type: "not_found" },
  route_not_found: { status: 404, type: "not_found" },
  method_not_allowed: { status: 405, type: "invalid_request_error" },
  contact_exists: { status: 409, type: "conflict" },
  label_exists: { status: 409, type: "conflict" },
  account_exists: { status: 409, type: "conflict" },
  customer_exists: { status: 409, type: "conflict" },
  idempotency_in_progress: { status: 409, type: "conflict" },
  // The client stopped sending its request (headers or body) for too long.
  request_timeout: { status: 408, type: "invalid_request_error" },
  // Merging contacts (docs/merge.md).
  contact_changed: { status: 409, type: "conflict" },
  merge_already_undone: { status: 409, type: "conflict" },
  payload_too_large: { status: 413, type: "invalid_request_error" },
  unsupported_media_type: { status: 415, type: "invalid_request_error" },
  // The request line or headers exceed the server's limit (16 KiB).
  headers_too_large: { status: 431, type: "invalid_request_error" },
  idempotency_key_reuse: { status: 422, type: "invalid_request_error" },
  account_required: { status: 422, type: "invalid_request_error" },
  no_connected_account: { status: 422, type: "invalid_request_error" },
  merge_with_itself: { status: 422, type: "invalid_request_error" },
  contact_merged: { status: 422, type: "invalid_request_error" },
  merge_chain: { status: 422, type: "invalid_request_error" },
  merge_invalid_result: { status: 422, type: "invalid_request_error" },
  merge_undo_expired: { status: 422, type: "invalid_request_error" },
  no_undoable_merge: { status: 422, type: "invalid_request_error" },
  rate_limit_exceeded: { status: 429, type: "rate_limit_error" },
  internal_error: { status: 500, type: "api_error" },
  service_unavailable: { status: 503, type: "api_error" },
} as const;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;
export type ErrorType = (typeof ERROR_CATALOGUE)[ErrorCode]["type"];
export const ERROR_CODES = Object.keys(ERROR_CATALOGUE) as ErrorCode[];

export interface ApiErrorOptions {
  /** The wire parameter the error is about, as the client named it. */
  param?: string;
  /**
   * The domain field the error is about (`display_name`, `phone_number`, …),
   * for errors the domain raises. Each surface renames it to its own wire name
   * (`named`); until then `param` is the domain name.
   */
  field?: string;
  /** Extra fields rendered inside `error` (e.g. `existing_id`). */
  extra?: Record<string, unknown>;
  /** Extra response headers (e.g. `Retry-After`). */
  headers?: Record<string, string>;
  cause?: unknown;
}

export class ApiError extends Error {
  readonly status: number;
  readonly type: ErrorType;
  readonly param: string | undefined;
  readonly field: string | undefined;
  readonly extra: Record<string, unknown> | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: ApiErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ApiError";
    this.status = ERROR_CATALOGUE[code].status;
    this.type = ERROR_CATALOGUE[code].type;
    this.field = options.field;
    this.param = options.param ?? options.field;
    this.extra = options.extra;
    this.headers = options.headers;
  }

  /**
   * The error in a surface's words: a domain `field` that the surface names
   * otherwise becomes that name, in `param` and wherever the message names it
   * (`display_name must be…` → `name must be…`). Errors about no domain field,
   * or about one the surface names alike, are returned as they are.
   */
  named(names: FieldNames): ApiError {
    const field = this.field;
    const wire = field === undefined ? undefined : names[field];
    if (field === undefined || wire === undefined || wire === field) return this;
    const message = this.message.replace(new RegExp(`\\b${field}\\b`, "g"), wire);
    return new ApiError(this.code, message, {
      param: wire,
      ...(this.extra === undefined ? {} : { extra: this.extra }),
      ...(this.headers === undefined ? {} : { headers: this.headers }),
      ...(this.cause === undefined ? {} : { cause: this.cause }),
    });
  }
}

/** A surface's wire names of the domain's fields (`{ display_name: "name" }`); unlisted fields keep their name. */
export type FieldNames = Readonly<Record<string, string>>;

/** An error about a domain field (see `ApiError.named`). */
export function fieldError(
  code: ErrorCode,
  field: string,
  message: string,
  options: Omit<ApiErrorOptions, "param" | "field"> = {},
): ApiError {
  return new ApiError(code, message, { ...options, field });
}

export function isApiError(value: unknown): value is ApiError {
  return value instanceof ApiError;
}

/** Shorthand for the common 404. */
export function notFound(what: string, param?: string): ApiError {
  return new ApiError("resource_not_found", `No such ${what}.`, param === undefined ? {} : { param });
}

/** The native envelope (spec §2): `{ error: { type, code, message, param?, request_id, ... } }`. */
export interface NativeErrorBody {
  error: {
    type: ErrorType;
    code: ErrorCode;
    message: string;
    param?: string;
    request_id: string;
    [extra: string]: unknown;
  };
}

export function renderNativeError(error: ApiError, requestId: string): NativeErrorBody {
  return {
    error: {
      type: error.type,
      code: error.code,
      message: error.message,
      ...(error.param === undefined ? {} : { param: error.param }),
      ...error.extra,
      request_id: requestId,
    },
  };
}
