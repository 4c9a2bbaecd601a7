import { PhonebookConnectionError, retryAfterSeconds } from "./errors.ts";

export interface RetryOptions {
  /** Attempts in all, the first included (default 4; 1 turns retries off). */
  maxAttempts?: number;
  /** Backoff before the second attempt; doubled for each next one (default 500 ms). */
  baseDelayMs?: number;
  /** Longest wait between two attempts, Retry-After included (default 30 s). A longer Retry-After is not waited for: the 429 is returned. */
  maxDelayMs?: number;
}

export interface RetryHooks {
  /** Waits `ms` (tests replace it to record the waits). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** A number in [0, 1) for the jitter (default Math.random). */
  random?: () => number;
  /** Makes an Idempotency-Key for a POST sent without one (default crypto.randomUUID). */
  newIdempotencyKey?: () => string;
}

type Fetch = (input: Request, init?: RequestInit) => Promise<Response>;

const RETRIED_STATUSES = new Set([429, 503]);

/**
 * A fetch that makes every POST idempotent and retries what is safe to retry:
 * - a POST without an Idempotency-Key gets one, and keeps it on every retry,
 *   so the server runs it at most once (and replays the first answer);
 * - 429 is retried for every method (the server rejected it before any work);
 * - 503, a 409 `idempotency_in_progress` and network errors are retried for
 *   GET, HEAD and POST (keyed), not for PATCH, PUT or DELETE, which the API
 *   does not deduplicate;
 * - waits are exponential with full jitter (base × 2^(n-1) × random), or the
 *   Retry-After the server sent when it sent one, bounded by maxDelayMs.
 */
export function retryingFetch(baseFetch: Fetch, options: RetryOptions = {}, hooks: RetryHooks = {}): Fetch {
  const maxAttempts = Math.max(1, options.maxAttempts ?? 4);
  const baseDelayMs = options.baseDelayMs ?? 500;
  const maxDelayMs = options.maxDelayMs ?? 30_000;
  const sleep = hooks.sleep ?? defaultSleep;
  const random = hooks.random ?? Math.random;
  const newKey = hooks.newIdempotencyKey ?? (() => crypto.randomUUID());

  return async (input, init) => {
    const request = new Request(input, init);
    if (request.method === "POST" && !request.headers.has("idempotency-key")) {
      request.headers.set("idempotency-key", newKey());
    }
    const replayable = ["GET", "HEAD", "POST"].includes(request.method);
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= maxAttempts;
      let response: Response;
      try {
        response = await baseFetch(last ? request : request.clone());
      } catch (error) {
        if (request.signal.aborted) throw error;
        if (last || !replayable) {
          throw new PhonebookConnectionError(
            `${request.method} ${new URL(request.url).pathname} got no answer after ${attempt} attempt(s): ${describe(error)}`,
            { cause: error },
          );
        }
        await sleep(backoff(attempt), request.signal);
        continue;
      }
      if (last || !(await shouldRetry(response, replayable))) return response;
      const retryAfter = retryAfterSeconds(response.headers.get("retry-after"));
      const wait = retryAfter !== undefined ? retryAfter * 1000 : backoff(attempt);
      if (wait > maxDelayMs) return response;
      await response.body?.cancel();
      await sleep(wait, request.signal);
    }
  };

  function backoff(attempt: number): number {
    return Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1)) * random();
  }
}

async function shouldRetry(response: Response, replayable: boolean): Promise<boolean> {
  if (response.status === 429) return true;
  if (!replayable) return false;
  if (RETRIED_STATUSES.has(response.status)) return true;
  if (response.status === 409) {
    const body = (await response
      .clone()
      .json()
      .catch(() => undefined)) as { error?: { code?: unknown } } | undefined;
    return body?.error?.code === "idempotency_in_progress";
  }
  return false;
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? error.message;
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
