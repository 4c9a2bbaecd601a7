import { Redis } from "ioredis";
import type { Logger } from "pino";
import { decisionOf, MemoryRateLimiter, type RateDecision, type RateLimiter } from "./rate-limiter.ts";

/**
 * The token bucket of rate-limiter.ts (`takeToken`) as one Lua script, so that read, refill,
 * take and write are atomic across every process sharing the Redis. Time is
 * Redis's own clock, so processes with skewed clocks still agree.
 * Returns { allowed (0|1), tokens left × 1000 (floored; negative after a
 * lowered limit), now in ms }.
 */
const TAKE_SCRIPT = `
local limit = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'used', 'at')
local used = tonumber(state[1])
local at = tonumber(state[2])
if used == nil or at == nil then
  used = 0
elseif now > at then
  used = math.max(0, used - (now - at) * limit / 60000)
end
local allowed = 0
if used + 1 <= limit then
  used = used + 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'used', string.format('%.6f', used), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(used * 60000 / limit) + 1000)
return { allowed, math.floor((limit - used) * 1000), now }
`;

type TakeCommand = (key: string, limit: number) => Promise<[number, number, number]>;

export interface RedisRateLimiterOptions {
  url: string;
  /** Prefix of every key this limiter writes (`<prefix>rl:<bucket>`). */
  prefix: string;
  log: Pick<Logger, "warn" | "info">;
  /** Longest a bucket operation may take before the request is served without Redis. */
  commandTimeoutMs?: number;
  /** After a failure, how long requests skip Redis before it is tried again. */
  retryAfterFailureMs?: number;
}

/**
 * Buckets shared through Redis. When Redis cannot be reached (down, slow,
 * not yet connected) requests are still served: the limiter fails open to
 * per-process memory buckets, logs one warning per outage, and goes back to
 * Redis by itself once ioredis has reconnected (or, after a command failed on
 * a live connection, once a probe 2 s later succeeds).
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly redis: Redis;
  private readonly takeCommand: TakeCommand;
  private readonly fallback = new MemoryRateLimiter();
  private degraded = false;
  /** Until this time (ms), requests do not try Redis: a hung Redis costs one timeout per interval, not one per request. */
  private skipUntil = 0;

  constructor(private readonly options: RedisRateLimiterOptions) {
    this.redis = new Redis(options.url, {
      // Fail fast instead of queueing while disconnected: a request never waits for Redis to come back.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs ?? 1_000,
      connectTimeout: 2_000,
      retryStrategy: (times) => Math.min(100 * times, 2_000),
      lazyConnect: false,
    });
    this.redis.on("error", (error: Error) => this.markDegraded(error));
    this.redis.defineCommand("phonebookTakeToken", { numberOfKeys: 1, lua: TAKE_SCRIPT });
    const commands = this.redis as unknown as { phonebookTakeToken: TakeCommand };
    this.takeCommand = (key, limit) => commands.phonebookTakeToken(key, limit);
  }

  /** Resolves once connected, or after `timeoutMs` (the limiter then starts degraded). */
  async ready(timeoutMs = 2_000): Promise<void> {
    if (this.redis.status === "ready") return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      this.redis.once("ready", done);
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  async take(key: string, limit: number): Promise<RateDecision> {
    if (this.redis.status === "ready" && Date.now() >= this.skipUntil) {
      try {
        const [allowed, milliTokens, at] = await this.takeCommand(`${this.options.prefix}rl:${key}`, limit);
        if (this.degraded) {
          this.degraded = false;
          this.options.log.info("rate limits: Redis is reachable again; buckets are shared again");
        }
        return decisionOf(limit, milliTokens / 1000, at, allowed === 1);
      } catch (error) {
        this.skipUntil = Date.now() + (this.options.retryAfterFailureMs ?? 2_000);
        this.markDegraded(error as Error);
      }
    } else if (!this.degraded) {
      this.markDegraded(new Error(`Redis connection is ${this.redis.status}`));
    }
    return this.fallback.takeNow(key, limit);
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
    await this.fallback.close();
  }

  private markDegraded(error: Error): void {
    if (this.degraded) return;
    this.degraded = true;
    this.options.log.warn(
      { err: { message: error.message } },
      "rate limits: Redis is unreachable; serving with per-process buckets until it is back",
    );
  }
}
