import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { ConfigError, loadConfig } from "../../src/config.ts";
import { canonicalJson, fingerprintOf, parseIdempotencyKey } from "../../src/domain/idempotency.ts";
import { ApiError } from "../../src/errors.ts";
import { decisionOf, MemoryRateLimiter, takeToken } from "../../src/rate-limit/rate-limiter.ts";

describe("Idempotency-Key and fingerprints", () => {
  test("keys are 1–255 printable ASCII characters", () => {
    assert.equal(parseIdempotencyKey(undefined), undefined);
    for (const ok of ["a", "x".repeat(255), "order 42 / retry #1", "~!@#$%^&*()"]) {
      assert.equal(parseIdempotencyKey(ok), ok);
    }
    for (const bad of ["", "x".repeat(256), "é", "a\tb", "a\nb", "\u0000", "\u007f", ["a", "b"]]) {
      assert.throws(
        () => parseIdempotencyKey(bad),
        (e: unknown) => e instanceof ApiError && e.code === "invalid_idempotency_key" && e.status === 400,
        JSON.stringify(bad),
      );
    }
  });

  test("canonical JSON ignores key order at every level and nothing else", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const shuffled = JSON.parse(JSON.stringify(value), (_key, v) =>
          v && typeof v === "object" && !Array.isArray(v)
            ? Object.fromEntries(Object.entries(v).reverse())
            : v,
        );
        assert.equal(canonicalJson(shuffled), canonicalJson(value));
        // Canonical JSON is JSON of the same value (-0 aside, which JSON itself writes as 0).
        assert.deepEqual(JSON.parse(canonicalJson(value)), JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  test("the fingerprint covers method, path and body", () => {
    const base = fingerprintOf("POST", "/v1/contacts", { a: 1, b: [1, 2] });
    assert.equal(base, fingerprintOf("post", "/v1/contacts", { b: [1, 2], a: 1 }));
    assert.notEqual(base, fingerprintOf("PUT", "/v1/contacts", { a: 1, b: [1, 2] }));
    assert.notEqual(base, fingerprintOf("POST", "/v1/contacts?x=1", { a: 1, b: [1, 2] }));
    assert.notEqual(base, fingerprintOf("POST", "/v1/contacts", { a: 1, b: [2, 1] }));
    assert.notEqual(base, fingerprintOf("POST", "/v1/contacts", { a: "1", b: [1, 2] }));
    assert.notEqual(fingerprintOf("POST", "/x", undefined), fingerprintOf("POST", "/x", {}));
    assert.notEqual(fingerprintOf("POST", "/x", "a,b"), fingerprintOf("POST", "/x", Buffer.from("a,c")));
  });
});

describe("token buckets", () => {
  test("a fresh bucket allows `limit` requests at once, then refuses until a token has refilled", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 0, max: 2 ** 40 }), (limit, t0) => {
        let state: ReturnType<typeof takeToken>["state"] | undefined;
        for (let i = 0; i < limit; i++) {
          const r = takeToken(state, limit, t0);
          assert.ok(r.allowed);
          const d = decisionOf(limit, r.tokens, t0, true);
          assert.equal(d.remaining, limit - i - 1);
          assert.equal(d.retryAfter, 0);
          state = r.state;
        }
        const refused = takeToken(state, limit, t0);
        assert.equal(refused.allowed, false);
        const d = decisionOf(limit, refused.tokens, t0, false);
        assert.equal(d.remaining, 0);
        assert.ok(d.retryAfter >= 1);
        assert.equal(d.resetAt, Math.ceil((t0 + 60_000) / 1000), "full again a minute after emptying");
        // Retry-After is enough: one token is back by then.
        assert.ok(takeToken(refused.state, limit, t0 + d.retryAfter * 1000).allowed);
      }),
    );
  });

  test("over any schedule, no more than limit + refill are allowed", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 120 }),
        fc.array(fc.integer({ min: 0, max: 5_000 }), { minLength: 1, maxLength: 300 }),
        (limit, gaps) => {
          let at = 1_000_000;
          let state: ReturnType<typeof takeToken>["state"] | undefined;
          let allowed = 0;
          for (const gap of gaps) {
            at += gap;
            const r = takeToken(state, limit, at);
            state = r.state;
            if (r.allowed) allowed += 1;
          }
          const elapsed = at - 1_000_000;
          assert.ok(allowed <= limit + Math.floor((elapsed * limit) / 60_000) + 1, `${allowed}`);
        },
      ),
    );
  });

  test("changing the limit takes effect at once", () => {
    let state = takeToken(undefined, 2, 0).state;
    state = takeToken(state, 2, 0).state;
    assert.equal(takeToken(state, 2, 0).allowed, false);
    assert.equal(takeToken(state, 60, 0).allowed, true, "a raised limit gives room");
    const busy = takeToken(takeToken(undefined, 60, 0).state, 60, 0).state;
    assert.equal(takeToken(busy, 1, 0).allowed, false, "a lowered limit removes it");
  });

  test("the memory limiter keeps one bucket per key", async () => {
    let clock = 0;
    const limiter = new MemoryRateLimiter(() => clock);
    assert.equal((await limiter.take("org_a:write", 1)).allowed, true);
    assert.equal((await limiter.take("org_a:write", 1)).allowed, false);
    assert.equal((await limiter.take("org_a:read", 1)).allowed, true);
    assert.equal((await limiter.take("org_b:write", 1)).allowed, true);
    clock += 60_000;
    assert.equal((await limiter.take("org_a:write", 1)).allowed, true);
  });

  test("the memory limiter forgets drained buckets when it is full, and only those", async () => {
    let clock = 0;
    const limiter = new MemoryRateLimiter(() => clock, 3);
    await limiter.take("slow", 1); // drains in 60 s
    await limiter.take("fast", 600); // drains in 100 ms
    await limiter.take("other", 600);
    clock += 1_000;
    await limiter.take("new", 600); // full: "fast" and "other" have drained and go
    assert.equal((await limiter.take("slow", 1)).allowed, false, "the busy bucket was kept");
  });
});

describe("REDIS_KEY_PREFIX", () => {
  test("defaults to phonebook: and must be printable without spaces", () => {
    assert.equal(loadConfig({}).redisKeyPrefix, "phonebook:");
    assert.equal(loadConfig({ REDIS_KEY_PREFIX: "pb:eu:" }).redisKeyPrefix, "pb:eu:");
    assert.throws(() => loadConfig({ REDIS_KEY_PREFIX: "a b" }), ConfigError);
    assert.throws(() => loadConfig({ REDIS_KEY_PREFIX: "x".repeat(101) }), ConfigError);
  });
});
