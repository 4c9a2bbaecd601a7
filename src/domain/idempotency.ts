import { createHash } from "node:crypto";
import { ApiError } from "../errors.ts";
import { isLockTimeout } from "../store/driver-errors.ts";
import * as repo from "../store/repositories/idempotency.ts";
import type { Store, Tx } from "../store/store.ts";
import { now } from "./clock.ts";

/** How long a key and its response are kept (spec §2: at least 24 hours). */
export const IDEMPOTENCY_RETENTION_MS = 24 * 60 * 60 * 1000;
/** How long a duplicate waits for the request holding its key (spec §2: up to 30 s). */
export const IDEMPOTENCY_WAIT_MS = 30_000;

const KEY_PATTERN = /^[\x20-\x7e]{1,255}$/;

/**
 * The `Idempotency-Key` header value, or undefined when none was sent.
 * 1–255 printable ASCII characters, else 400 `invalid_idempotency_key`.
 */
export function parseIdempotencyKey(raw: string | string[] | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (Array.isArray(raw) || !KEY_PATTERN.test(raw)) {
    throw new ApiError(
      "invalid_idempotency_key",
      "Idempotency-Key must be one value of 1 to 255 printable ASCII characters.",
      { param: "Idempotency-Key" },
    );
  }
  return raw;
}

/** JSON with object keys sorted at every level, so that key order never changes a fingerprint. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item ?? null)).join(",")}]`;
  if (Buffer.isBuffer(value)) return JSON.stringify(value.toString("base64"));
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(",")}}`;
}

/** sha256 of method, path (with its query string) and the canonical JSON of the body. */
export function fingerprintOf(method: string, path: string, body: unknown): string {
  const text = typeof body === "string" ? JSON.stringify(body) : canonicalJson(body ?? null);
  return createHash("sha256").update(`${method.toUpperCase()} ${path}\n${text}`).digest("hex");
}

/** A finished response as recorded with its key. */
export interface RecordedResponse {
  /** "response": `body` is the serialized payload; "error": `body` is a coded error (see `RecordedError`). */
  kind: "response" | "error";
  status: number;
  headers: Record<string, string>;
  body: string | null;
}

/** How a coded 4xx error is kept, to be thrown again (and rendered by the surface) on replay. */
export interface RecordedError {
  code: ApiError["code"];
  message: string;
  param?: string | undefined;
  /** The domain field of the error (in domain words): the surface names it again on replay. */
  field?: string | undefined;
  extra?: Record<string, unknown> | undefined;
  headers?: Record<string, string> | undefined;
}

export interface KeyedWrite {
  organizationId: string;
  key: string;
  fingerprint: string;
  requestId: string;
  /** Longest wait for a concurrent holder of the key (PostgreSQL). */
  waitMs?: number;
}

export type IdempotentOutcome<T> =
  | { replayed: false; value: T }
  | { replayed: true; record: RecordedResponse; originalRequestId: string };

/** 4xx errors that describe the request itself are recorded and replayed; others leave the key free. */
const NOT_RECORDED = new Set<string>([
  "idempotency_in_progress",
  "idempotency_key_reuse",
  "invalid_idempotency_key",
  "rate_limit_exceeded",
]);

/** The record of a thrown error, if it is one worth replaying (a coded 4xx about the request itself). */
export function recordedErrorResponse(error: unknown): RecordedResponse | undefined {
  if (!(error instanceof ApiError)) return undefined;
  if (error.status < 400 || error.status >= 500 || error.status === 401 || NOT_RECORDED.has(error.code)) {
    return undefined;
  }
  const recorded: RecordedError = {
    code: error.code,
    message: error.message,
    param: error.param,
    field: error.field,
    extra: error.extra,
    headers: error.headers,
  };
  return { kind: "error", status: error.status, headers: {}, body: JSON.stringify(recorded) };
}

export function errorFromRecord(record: RecordedResponse): ApiError {
  const stored = JSON.parse(record.body ?? "{}") as RecordedError;
  return new ApiError(stored.code, stored.message, {
    ...(stored.field === undefined ? {} : { field: stored.field }),
    ...(stored.param === undefined || stored.field !== undefined ? {} : { param: stored.param }),
    ...(stored.extra === undefined ? {} : { extra: stored.extra }),
    ...(stored.headers === undefined ? {} : { headers: stored.headers }),
  });
}

/**
 * Runs `work` at most once per (organisation, key), in one transaction with
 * the key record, so that a crash leaves neither or both.
 *
 * The transaction first claims the key by inserting its row. A concurrent
 * duplicate's insert then waits on the primary key (PostgreSQL; bounded by
 * `waitMs`, then 409 `idempotency_in_progress`) or simply runs after the first
 * (SQLite serialises write transactions); either way it finds the committed,
 * finished record and replays it. A different fingerprint under the same key
 * is 422 `idempotency_key_reuse`. `work` returns its value and the response to
 * record; a recordable 4xx thrown by `work` rolls its writes back and is
 * recorded in a second transaction; anything else (a 500) records nothing.
 */
export async function executeOnce<T>(
  store: Pick<Store, "transaction">,
  write: KeyedWrite,
  work: (tx: Tx) => Promise<{ value: T; response: RecordedResponse }>,
  beforeCommit?: (tx: Tx) => Promise<void>,
): Promise<IdempotentOutcome<T>> {
  let failure: { error: unknown; response: RecordedResponse } | undefined;
  const outcome = await claimed(store, write, async (tx) => {
    try {
      const { value, response } = await work(tx);
      await finish(tx, write, response);
      await beforeCommit?.(tx);
      return { replayed: false as const, value };
    } catch (error) {
      const response = recordedErrorResponse(error);
      if (response) failure = { error, response };
      throw error;
    }
  }).catch(async (error: unknown) => {
    if (!failure || failure.error !== error) throw error;
    // The write was rolled back with its claim; record the error under the key now.
    // Recording is best effort: if it cannot be done (a concurrent holder of the
    // key, the store gone), the client still gets its own error, and nothing is kept.
    const { response } = failure;
    return claimed(store, write, async (tx) => {
      await finish(tx, write, response);
      return { replayed: false as const, value: undefined };
    }).catch(() => ({ replayed: false as const, value: undefined }));
  });
  // If another request recorded the key in between, its response is what this key means now.
  if (failure && !outcome.replayed) throw failure.error;
  return outcome as IdempotentOutcome<T>;
}

async function finish(tx: Tx, write: KeyedWrite, response: RecordedResponse): Promise<void> {
  await repo.finishIdempotencyKey(tx, write.organizationId, write.key, {
    kind: response.kind,
    status: response.status,
    headers: JSON.stringify(response.headers),
    body: response.body,
  });
}

/** Claims the key in a new transaction and runs `fn` there, or returns the finished record to replay. */
async function claimed<T>(
  store: Pick<Store, "transaction">,
  write: KeyedWrite,
  fn: (tx: Tx) => Promise<{ replayed: false; value: T }>,
): Promise<IdempotentOutcome<T>> {
  let claiming = true;
  try {
    return await store.transaction(async (tx) => {
      claiming = true;
      const existing = await claim(tx, write);
      if (existing) return existing;
      await repo.restoreLockWait(tx);
      claiming = false;
      return fn(tx);
    });
  } catch (error) {
    if (claiming && isLockTimeout(error)) {
      throw new ApiError(
        "idempotency_in_progress",
        "A request with this Idempotency-Key is still being processed; retry shortly.",
        { param: "Idempotency-Key", cause: error },
      );
    }
    throw error;
  }
}

/** Claims the key (undefined) or returns the finished record it already has. */
async function claim(tx: Tx, write: KeyedWrite): Promise<IdempotentOutcome<never> | undefined> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const at = now();
    const claimedNow = await repo.claimIdempotencyKey(
      tx,
      {
        organization_id: write.organizationId,
        idempotency_key: write.key,
        fingerprint: write.fingerprint,
        request_id: write.requestId,
        created_at: at,
        expires_at: at + IDEMPOTENCY_RETENTION_MS,
      },
      write.waitMs ?? IDEMPOTENCY_WAIT_MS,
    );
    if (claimedNow) return undefined;
    const row = await repo.findIdempotencyKey(tx, write.organizationId, write.key);
    if (!row) continue; // deleted (expired) between the insert and the read
    if (row.expires_at <= at) {
      await repo.deleteExpiredIdempotencyKey(tx, write.organizationId, write.key, at);
      continue;
    }
    if (row.fingerprint !== write.fingerprint) {
      throw new ApiError(
        "idempotency_key_reuse",
        "This Idempotency-Key was already used for a different request (method, path or body).",
        { param: "Idempotency-Key" },
      );
    }
    if (row.kind === null || row.status === null) {
      // Only possible if another writer committed a claim without finishing it.
      throw new ApiError(
        "idempotency_in_progress",
        "A request with this Idempotency-Key is still being processed; retry shortly.",
        { param: "Idempotency-Key" },
      );
    }
    return {
      replayed: true,
      originalRequestId: row.request_id,
      record: {
        kind: row.kind,
        status: row.status,
        headers: JSON.parse(row.headers ?? "{}") as Record<string, string>,
        body: row.body,
      },
    };
  }
  throw new ApiError("idempotency_in_progress", "The Idempotency-Key is contended; retry shortly.", {
    param: "Idempotency-Key",
  });
}

/** Deletes expired records in batches; returns how many went. */
export async function sweepExpiredIdempotencyKeys(
  store: Pick<Store, "db">,
  at = now(),
  batch = 1000,
): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = await repo.deleteExpiredIdempotencyKeys(store.db, at, batch);
    total += deleted;
    if (deleted < batch) return total;
  }
}
