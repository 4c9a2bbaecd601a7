import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { storeKinds } from "../helpers/env.ts";
import { ADMIN_TOKEN, createHarness, type Harness } from "../helpers/harness.ts";

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

function assertRateHeaders(
  res: { statusCode: number; headers: Record<string, unknown>; body: string },
  limit: number,
): { remaining: number; reset: number } {
  const context = `${res.statusCode} ${JSON.stringify(res.headers)} ${res.body}`;
  assert.equal(res.headers["x-ratelimit-limit"], String(limit), context);
  const remaining = Number(res.headers["x-ratelimit-remaining"]);
  const reset = Number(res.headers["x-ratelimit-reset"]);
  assert.ok(Number.isInteger(remaining) && remaining >= 0 && remaining <= limit, context);
  const nowSeconds = Date.now() / 1000;
  assert.ok(Number.isInteger(reset) && reset >= Math.floor(nowSeconds) && reset <= nowSeconds + 61, context);
  return { remaining, reset };
}

for (const kind of storeKinds()) {
  describe(`rate limits [${kind}]`, () => {
    let h: Harness;
    before(async () => {
      h = await createHarness(kind, {}, { realRateLimits: true });
    });
    after(async () => {
      await h.close();
    });

    test("every authenticated response carries X-RateLimit-*, errors included; 401s do not", async () => {
      const tenant = await h.tenant("Headers Co");
      await h.account(tenant.orgId);
      const reads = [
        await h.inject({ method: "GET", url: "/v1/me", headers: tenant.auth }),
        await h.inject({ method: "GET", url: "/v1/contacts?limit=abc", headers: tenant.auth }),
        await h.inject({
          method: "GET",
          url: "/v1/contacts/ctc_01J0000000000000000000000A",
          headers: tenant.auth,
        }),
      ];
      assert.deepEqual(
        reads.map((r) => r.statusCode),
        [200, 400, 404],
      );
      // Refill is 10 tokens a second at 600/min, so exact counts are checked with tight limits below.
      for (const r of reads) assert.ok(assertRateHeaders(r, 600).remaining <= 599);

      const writes = [
        await h.inject({
          method: "POST",
          url: "/v1/contacts",
          headers: tenant.auth,
          payload: { phone_number: "+628111000001" },
        }),
        await h.inject({ method: "POST", url: "/v1/contacts", headers: tenant.auth, payload: { nope: 1 } }),
        await h.inject({
          method: "POST",
          url: "/v1/contacts",
          headers: { ...tenant.auth, "idempotency-key": "" },
          payload: {},
        }),
      ];
      assert.deepEqual(
        writes.map((r) => r.statusCode),
        [201, 400, 400],
      );
      for (const r of writes)
        assert.ok(assertRateHeaders(r, 60).remaining <= 59, "writes have their own bucket");
      for (const r of [...reads, ...writes]) assert.equal(r.headers["retry-after"], undefined);

      const unauthenticated = await h.inject({ method: "GET", url: "/v1/me" });
      assert.equal(unauthenticated.statusCode, 401);
      assert.equal(unauthenticated.headers["x-ratelimit-limit"], undefined);
    });

    test("an empty bucket is 429 rate_limit_exceeded with Retry-After; checks run auth → 429 → 400", async () => {
      const tenant = await h.tenant("Tight Co");
      await h.account(tenant.orgId);
      // Per-organisation overrides come from the admin API.
      const patched = await h.inject({
        method: "PATCH",
        url: `/admin/v1/organizations/${tenant.orgId}`,
        headers: admin,
        payload: { rate_limits: { read_per_minute: 5, write_per_minute: 2 } },
      });
      assert.equal(patched.statusCode, 200, patched.body);
      const me = await h.inject({ method: "GET", url: "/v1/me", headers: tenant.auth });
      assert.deepEqual(me.json().data.rate_limits, { read_per_minute: 5, write_per_minute: 2 });
      assert.equal(assertRateHeaders(me, 5).remaining, 4);

      const create = (payload: object, headers: Record<string, string> = {}) =>
        h.inject({ method: "POST", url: "/v1/contacts", headers: { ...tenant.auth, ...headers }, payload });
      const first = await create({ phone_number: "+628111000002" });
      assert.equal(first.statusCode, 201, first.body);
      assert.equal(assertRateHeaders(first, 2).remaining, 1, "one write token per request");
      assert.equal((await create({ phone_number: "+628111000003" })).statusCode, 201);

      const limited = await create({ phone_number: "+628111000004" });
      assert.equal(limited.statusCode, 429, limited.body);
      assert.equal(limited.json().error.code, "rate_limit_exceeded");
      assert.equal(limited.json().error.type, "rate_limit_error");
      assert.equal(limited.json().error.request_id, limited.headers["x-request-id"]);
      const { remaining } = assertRateHeaders(limited, 2);
      assert.equal(remaining, 0);
      const retryAfter = Number(limited.headers["retry-after"]);
      assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 30, `${retryAfter}`);

      // Rate limit before validation: a bad body or a bad Idempotency-Key is still 429 …
      const badBody = await create({ unknown_field: true });
      assert.equal(badBody.statusCode, 429, badBody.body);
      const badKey = await create({ phone_number: "+628111000005" }, { "idempotency-key": "" });
      assert.equal(badKey.statusCode, 429, badKey.body);
      // … and authentication before the rate limit.
      const badAuth = await h.inject({
        method: "POST",
        url: "/v1/contacts",
        headers: { authorization: "Bearer pb_live_notarealkeynotarealkeynotareal" },
        payload: {},
      });
      assert.equal(badAuth.statusCode, 401, badAuth.body);
      assert.equal(await countContacts(h, tenant.orgId), 2, "nothing written past the limit");

      // Reads have their own bucket and are still served.
      const read = await h.inject({ method: "GET", url: "/v1/contacts", headers: tenant.auth });
      assert.equal(read.statusCode, 200, read.body);
      assert.equal(assertRateHeaders(read, 5).remaining, 3, "the second read of a 5/min bucket");

      // Another organisation is not affected.
      const other = await h.tenant("Roomy Co");
      const otherRead = await h.inject({ method: "GET", url: "/v1/me", headers: other.auth });
      assert.equal(otherRead.statusCode, 200);
      assert.equal(otherRead.headers["x-ratelimit-remaining"], "599", "a fresh bucket");

      // Raising the limit takes effect at once (the bucket counts tokens used, not tokens left).
      await h.inject({
        method: "PATCH",
        url: `/admin/v1/organizations/${tenant.orgId}`,
        headers: admin,
        payload: { rate_limits: null },
      });
      const after = await create({ phone_number: "+628111000006" });
      assert.equal(after.statusCode, 201, after.body);
      assertRateHeaders(after, 60);
    });
  });
}

async function countContacts(h: Harness, orgId: string): Promise<number> {
  const rows = await h.store.db
    .selectFrom("contacts")
    .select("id")
    .where("organization_id", "=", orgId)
    .execute();
  return rows.length;
}
