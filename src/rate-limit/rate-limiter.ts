/**
 * Per-organisation token buckets (spec §2). A bucket holds up to `limit`
 * tokens and refills continuously at `limit` per minute; each request takes
 * one, and a request finding less than one token is refused. Two implementations: in-process memory (default) and Redis (shared by
 * every process, see redis.ts).
 */

export type BucketKind = "read" | "write";

export interface RateDecision {
  allowed: boolean;
  /** Bucket size (requests per minute). */
  limit: number;
  /** Whole tokens left after this request. */
  remaining: number;
  /** Unix seconds at which the bucket is full again. */
  resetAt: number;
  /** Seconds until one token is available; 0 when allowed. */
  retryAfter: number;
}

export interface RateLimiter {
  /** Takes one token from the bucket `key` of size `limit` per minute. Never throws. */
  take(key: string, limit: number): Promise<RateDecision>;
  close(): Promise<void>;
}

const MINUTE_MS = 60_000;

/**
 * A bucket is kept as the tokens *used* (draining at `limit` per minute)
 * rather than the tokens left, so that changing an organisation's limit takes
 * effect at once: a raised limit gives room immediately, a lowered one
 * removes it. Tokens left = limit − used.
 */
export interface BucketState {
  used: number;
  /** Milliseconds of the last update. */
  at: number;
}

/** The bucket after draining to `at` and trying to take one token. Pure. */
export function takeToken(
  state: BucketState | undefined,
  limit: number,
  at: number,
): { state: BucketState; allowed: boolean; tokens: number } {
  // Multiply before dividing: whole numbers stay exact (a full minute refills exactly `limit`).
  let used =
    state === undefined ? 0 : Math.max(0, state.used - (Math.max(0, at - state.at) * limit) / MINUTE_MS);
  const allowed = used + 1 <= limit;
  if (allowed) used += 1;
  return { state: { used, at }, allowed, tokens: limit - used };
}

/** Headers' worth of numbers for a bucket holding `tokens` at `at` (ms). */
export function decisionOf(limit: number, tokens: number, at: number, allowed: boolean): RateDecision {
  const fullInMs = Math.max(0, ((limit - tokens) * MINUTE_MS) / limit);
  return {
    allowed,
    limit,
    remaining: Math.max(0, Math.floor(tokens)),
    resetAt: Math.ceil((at + fullInMs) / 1000),
    retryAfter: allowed ? 0 : Math.max(1, Math.ceil(((1 - tokens) * MINUTE_MS) / limit / 1000)),
  };
}

/** Buckets in this process's memory: the default, exact for a single process. */
export class MemoryRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, BucketState & { limit: number }>();

  constructor(
    private readonly clock: () => number = Date.now,
    private readonly maxBuckets = 100_000,
  ) {}

  async take(key: string, limit: number): Promise<RateDecision> {
    return this.takeNow(key, limit);
  }

  /** Synchronous form, also used as the fallback of the Redis limiter. */
  takeNow(key: string, limit: number): RateDecision {
    const at = this.clock();
    const { state, allowed, tokens } = takeToken(this.buckets.get(key), limit, at);
    if (this.buckets.size >= this.maxBuckets && !this.buckets.has(key)) this.evictDrained(at);
    this.buckets.set(key, { ...state, limit });
    return decisionOf(limit, tokens, at, allowed);
  }

  async close(): Promise<void> {
    this.buckets.clear();
  }

  /** A bucket that has drained completely is the same as no bucket: forget those. */
  private evictDrained(at: number): void {
    for (const [key, state] of this.buckets) {
      if (state.used <= ((at - state.at) * state.limit) / MINUTE_MS) this.buckets.delete(key);
    }
    if (this.buckets.size >= this.maxBuckets) this.buckets.clear();
  }
}
