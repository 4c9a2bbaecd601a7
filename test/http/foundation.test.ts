import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { buildApp } from "../../src/app.ts";
import { ConfigError, loadConfig } from "../../src/config.ts";
import { bootstrapIfEmpty } from "../../src/domain/bootstrap.ts";
import { createApiKey, revokeApiKey } from "../../src/domain/organizations.ts";
import { storeKinds } from "../helpers/env.ts";
import { ADMIN_TOKEN, createHarness, createTestStore, type Harness } from "../helpers/harness.ts";
import { protectedRoutes } from "../helpers/routes.ts";

const ID_RE = /^req_[0-9A-HJKMNP-TV-Z]{26}$/;

function assertEnvelope(
  res: { statusCode: number; headers: Record<string, unknown>; json(): unknown },
  status: number,
  code: string,
) {
  const body = res.json() as {
    error?: { type?: string; code?: string; message?: string; request_id?: string };
  };
  assert.equal(res.statusCode, status, JSON.stringify(body));
  assert.equal(body.error?.code, code, JSON.stringify(body));
  assert.equal(typeof body.error?.type, "string");
  assert.equal(typeof body.error?.message, "string");
  assert.match(body.error?.request_id ?? "", ID_RE);
  assert.equal(res.headers["x-request-id"], body.error?.request_id);
}

for (const kind of storeKinds()) {
  describe(`foundation [${kind}]`, () => {
    let h: Harness;
    before(async () => {
      h = await createHarness(kind);
    });
    after(async () => {
      await h.close();
    });

    test("health and ready answer without a key, with X-Request-Id", async () => {
      for (const url of ["/v1/health", "/v1/ready"]) {
        const res = await h.inject({ method: "GET", url });
        assert.equal(res.statusCode, 200, res.body);
        assert.match(String(res.headers["x-request-id"]), ID_RE);
        assert.equal(res.json().request_id, res.headers["x-request-id"]);
      }
    });

    test("every protected route rejects missing, malformed, unknown, expired and revoked keys", async () => {
      const routes = protectedRoutes(h.app);
      assert.ok(routes.length >= 2, "the route list is read from the OpenAPI document");
      const tenant = await h.tenant("Auth Co");
      const expired = await createApiKey(h.store.db, tenant.orgId, { expires_at: Date.now() + 50 });
      const revoked = await createApiKey(h.store.db, tenant.orgId, {});
      await revokeApiKey(h.store.db, revoked.row.id);
      await new Promise((r) => setTimeout(r, 60));
      const cases: Array<[Record<string, string>, string]> = [
        [{}, "missing_api_key"],
        [{ authorization: "Bearer" }, "missing_api_key"],
        [{ authorization: "Basic dXNlcjpwYXNz" }, "invalid_api_key"],
        [{ authorization: "Bearer pb_live_notarealkeynotarealkeynotareal" }, "invalid_api_key"],
        [{ "x-api-key": "pb_live_notarealkeynotarealkeynotareal" }, "invalid_api_key"],
        [{ authorization: `Bearer ${expired.key}` }, "expired_api_key"],
        [{ "x-api-key": revoked.key }, "revoked_api_key"],
      ];
      for (const route of routes) {
        for (const [headers, code] of cases) {
          const res = await h.inject({ ...route, method: route.method as "GET", headers });
          assert.equal(
            res.statusCode,
            401,
            `${route.method} ${route.url} ${JSON.stringify(headers)}: ${res.body}`,
          );
          if (route.url.startsWith("/v1/")) assertEnvelope(res, 401, code);
        }
      }
    });

    test("a key works as Bearer and as X-API-Key; /v1/me shows the org, key and limits", async () => {
      const tenant = await h.tenant("Me Co");
      for (const headers of [tenant.auth, { "x-api-key": tenant.key }]) {
        const res = await h.inject({ method: "GET", url: "/v1/me", headers });
        assert.equal(res.statusCode, 200, res.body);
        const me = res.json().data;
        assert.equal(me.organization.id, tenant.orgId);
        assert.equal(me.api_key.id, tenant.keyId);
        assert.equal(me.api_key.last4, tenant.key.slice(-4));
        assert.deepEqual(me.rate_limits, { read_per_minute: 600, write_per_minute: 60 });
        assert.ok(!res.body.includes(tenant.key), "the key itself is never echoed");
      }
    });

    test("accounts: connected by default, all on request, never another org's", async () => {
      const a = await h.tenant("A");
      const b = await h.tenant("B");
      const a1 = await h.account(a.orgId);
      const a2 = await h.account(a.orgId, { status: "disconnected" });
      await h.account(b.orgId);
      const connected = await h.inject({ method: "GET", url: "/v1/accounts", headers: a.auth });
      assert.deepEqual(
        connected.json().data.map((x: { id: string }) => x.id),
        [a1.id],
      );
      const all = await h.inject({ method: "GET", url: "/v1/accounts?status=all", headers: a.auth });
      assert.deepEqual(
        all
          .json()
          .data.map((x: { id: string }) => x.id)
          .sort(),
        [a1.id, a2.id].sort(),
      );
      assert.equal(all.json().data[0].object, "account");
      const bad = await h.inject({ method: "GET", url: "/v1/accounts?status=nope", headers: a.auth });
      assertEnvelope(bad, 400, "invalid_field_value");
      assert.equal(bad.json().error.param, "status");
      const unknown = await h.inject({ method: "GET", url: "/v1/accounts?colour=red", headers: a.auth });
      assertEnvelope(unknown, 400, "invalid_field_value");
      assert.equal(unknown.json().error.param, "colour");
    });

    test("unknown routes, wrong methods, bad JSON, oversized and wrongly typed bodies use the envelope", async () => {
      const tenant = await h.tenant();
      assertEnvelope(await h.inject({ method: "GET", url: "/v1/nowhere" }), 404, "route_not_found");
      assertEnvelope(await h.inject({ method: "GET", url: "/elsewhere" }), 404, "route_not_found");
      const wrong = await h.inject({ method: "DELETE", url: "/v1/me", headers: tenant.auth });
      assertEnvelope(wrong, 405, "method_not_allowed");
      assert.equal(wrong.headers.allow, "GET");
      const withParam = await h.inject({
        method: "PUT",
        url: "/v1/contacts/ctc_01J0000000000000000000000A",
        headers: tenant.auth,
      });
      assertEnvelope(withParam, 405, "method_not_allowed");
      assert.equal(withParam.headers.allow, "GET, PATCH, DELETE");
      const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
      const badJson = await h.inject({
        method: "POST",
        url: "/admin/v1/organizations",
        headers: { ...admin, "content-type": "application/json" },
        payload: '{"name": ',
      });
      assertEnvelope(badJson, 400, "invalid_json");
      const emptyJson = await h.inject({
        method: "POST",
        url: "/admin/v1/organizations",
        headers: { ...admin, "content-type": "application/json" },
        payload: "",
      });
      assertEnvelope(emptyJson, 400, "invalid_json");
      const big = await h.inject({
        method: "POST",
        url: "/admin/v1/organizations",
        headers: { ...admin, "content-type": "application/json" },
        payload: JSON.stringify({ name: "x".repeat(1024 * 1024 + 10) }),
      });
      assertEnvelope(big, 413, "payload_too_large");
      const text = await h.inject({
        method: "POST",
        url: "/admin/v1/organizations",
        headers: { ...admin, "content-type": "text/plain" },
        payload: "name=x",
      });
      assertEnvelope(text, 415, "unsupported_media_type");
      const unknownField = await h.inject({
        method: "POST",
        url: "/admin/v1/organizations",
        headers: admin,
        payload: { name: "x", colour: "red" },
      });
      assertEnvelope(unknownField, 400, "unknown_field");
      assert.equal(unknownField.json().error.param, "colour");
      const missing = await h.inject({
        method: "POST",
        url: "/admin/v1/organizations",
        headers: admin,
        payload: {},
      });
      assertEnvelope(missing, 400, "missing_required_field");
      assert.equal(missing.json().error.param, "name");
      const wrongType = await h.inject({
        method: "POST",
        url: "/admin/v1/organizations",
        headers: admin,
        payload: { name: 42 },
      });
      assertEnvelope(wrongType, 400, "invalid_field_value");
      assert.equal(wrongType.json().error.param, "name");
    });

    test("admin API: organisations, keys, accounts, revocation, rate-limit overrides", async () => {
      const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
      assertEnvelope(
        await h.inject({ method: "GET", url: "/admin/v1/organizations" }),
        401,
        "missing_api_key",
      );
      assertEnvelope(
        await h.inject({
          method: "GET",
          url: "/admin/v1/organizations",
          headers: { authorization: "Bearer wrong-token-wrong-token" },
        }),
        401,
        "invalid_api_key",
      );
      const org = await h.inject({
        method: "POST",
        url: "/admin/v1/organizations",
        headers: admin,
        payload: { name: "Admin Made" },
      });
      assert.equal(org.statusCode, 201, org.body);
      const orgId = org.json().data.id;
      assert.match(orgId, /^org_[0-9A-HJKMNP-TV-Z]{26}$/);
      const key = await h.inject({
        method: "POST",
        url: `/admin/v1/organizations/${orgId}/api_keys`,
        headers: admin,
        payload: { label: "ci" },
      });
      assert.equal(key.statusCode, 201, key.body);
      const { key: secret, id: keyId, last4 } = key.json().data;
      assert.match(secret, /^pb_live_[A-Za-z0-9_-]{32}$/);
      assert.equal(last4, secret.slice(-4));
      const stored = await h.store.db
        .selectFrom("api_keys")
        .selectAll()
        .where("id", "=", keyId)
        .executeTakeFirstOrThrow();
      assert.notEqual(stored.key_hash, secret, "only a hash is stored");
      assert.ok(!JSON.stringify(stored).includes(secret));

      const account = await h.inject({
        method: "POST",
        url: `/admin/v1/organizations/${orgId}/accounts`,
        headers: admin,
        payload: { phone_number_id: "555000111222", phone_number: "+62 811-1222-333", name: "Support" },
      });
      assert.equal(account.statusCode, 201, account.body);
      assert.equal(account.json().data.phone_number, "+628111222333");
      const dup = await h.inject({
        method: "POST",
        url: `/admin/v1/organizations/${orgId}/accounts`,
        headers: admin,
        payload: { phone_number_id: "555000111222", phone_number: "+628111222334" },
      });
      assertEnvelope(dup, 409, "account_exists");
      const badPhone = await h.inject({
        method: "POST",
        url: `/admin/v1/organizations/${orgId}/accounts`,
        headers: admin,
        payload: { phone_number_id: "555000111223", phone_number: "12" },
      });
      assertEnvelope(badPhone, 400, "invalid_phone_number");
      const badPnid = await h.inject({
        method: "POST",
        url: `/admin/v1/organizations/${orgId}/accounts`,
        headers: admin,
        payload: { phone_number_id: "12ab", phone_number: "+628111222335" },
      });
      assertEnvelope(badPnid, 400, "invalid_field_value");
      const accountId = account.json().data.id;
      const patched = await h.inject({
        method: "PATCH",
        url: `/admin/v1/accounts/${accountId}`,
        headers: admin,
        payload: { status: "disconnected" },
      });
      assert.equal(patched.json().data.status, "disconnected");

      const me = await h.inject({
        method: "GET",
        url: "/v1/me",
        headers: { authorization: `Bearer ${secret}` },
      });
      assert.equal(me.json().data.organization.id, orgId);
      const limits = await h.inject({
        method: "PATCH",
        url: `/admin/v1/organizations/${orgId}`,
        headers: admin,
        payload: { rate_limits: { read_per_minute: 1200 } },
      });
      assert.equal(limits.statusCode, 200, limits.body);
      const me2 = await h.inject({
        method: "GET",
        url: "/v1/me",
        headers: { authorization: `Bearer ${secret}` },
      });
      assert.deepEqual(me2.json().data.rate_limits, { read_per_minute: 1200, write_per_minute: 60 });

      const revoke = await h.inject({ method: "DELETE", url: `/admin/v1/api_keys/${keyId}`, headers: admin });
      assert.equal(revoke.statusCode, 200, revoke.body);
      assertEnvelope(
        await h.inject({ method: "GET", url: "/v1/me", headers: { authorization: `Bearer ${secret}` } }),
        401,
        "revoked_api_key",
      );
      assertEnvelope(
        await h.inject({
          method: "DELETE",
          url: "/admin/v1/api_keys/key_01J0000000000000000000000A",
          headers: admin,
        }),
        404,
        "resource_not_found",
      );
      assertEnvelope(
        await h.inject({ method: "DELETE", url: "/admin/v1/api_keys/nope", headers: admin }),
        400,
        "invalid_field_value",
      );

      const list = await h.inject({ method: "GET", url: "/admin/v1/organizations?limit=1", headers: admin });
      assert.equal(list.json().data.length, 1);
      assert.equal(list.json().has_more, true);
      const next = await h.inject({
        method: "GET",
        url: `/admin/v1/organizations?limit=1&cursor=${encodeURIComponent(list.json().next_cursor)}`,
        headers: admin,
      });
      assert.equal(next.statusCode, 200, next.body);
      assert.notEqual(next.json().data[0].id, list.json().data[0].id);
    });

    test("migrations are idempotent; bootstrap creates one working key exactly once", async () => {
      const fresh = await createTestStore(kind);
      try {
        const first = await fresh.store.migrate();
        assert.ok(first.applied.length >= 1);
        const second = await fresh.store.migrate();
        assert.deepEqual(second.applied, []);
        const results = await Promise.all([bootstrapIfEmpty(fresh.store), bootstrapIfEmpty(fresh.store)]);
        const made = results.filter((r) => r !== undefined);
        assert.equal(made.length, 1);
        assert.equal(await bootstrapIfEmpty(fresh.store), undefined);
        const app = await buildApp(loadConfig({ LOG_LEVEL: "silent", ...fresh.env }), { store: fresh.store });
        const res = await app.inject({
          method: "GET",
          url: "/v1/me",
          headers: { authorization: `Bearer ${made[0]!.apiKey.key}` },
        });
        assert.equal(res.statusCode, 200, res.body);
        assert.equal(res.json().data.organization.id, made[0]!.organizationId);
        await app.close();
      } finally {
        await fresh.drop();
      }
    });

    test("an unexpected exception is a 500 internal_error without details; ready is 503 when the store is gone", async () => {
      const fresh = await createTestStore(kind);
      try {
        const app = await buildApp(loadConfig({ LOG_LEVEL: "silent", ...fresh.env }), { store: fresh.store });
        app.get("/v1/__boom", { schema: { security: [] } }, async () => {
          throw new Error("secret internal detail SELECT * FROM contacts");
        });
        const boom = await app.inject({ method: "GET", url: "/v1/__boom" });
        assertEnvelope(boom, 500, "internal_error");
        assert.ok(!boom.body.includes("secret internal detail"));
        assert.ok(!boom.body.includes("at "), "no stack trace");
        await fresh.store.close();
        const ready = await app.inject({ method: "GET", url: "/v1/ready" });
        assertEnvelope(ready, 503, "service_unavailable");
        await app.close();
      } finally {
        await fresh.drop();
      }
    });
  });
}

describe("configuration", () => {
  test("defaults match spec §8", () => {
    const config = loadConfig({});
    assert.equal(config.port, 3000);
    assert.equal(config.host, "127.0.0.1");
    assert.ok(config.dataDir.endsWith("/data"));
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.logLevel, "info");
    assert.equal(config.databaseQueryTimeoutMs, 30_000);
    assert.equal(loadConfig({ DATABASE_QUERY_TIMEOUT_MS: "2500" }).databaseQueryTimeoutMs, 2500);
    assert.ok(Object.isFrozen(config));
  });

  const bad: Array<[Record<string, string>, string]> = [
    [{ PORT: "eighty" }, "PORT"],
    [{ PORT: "70000" }, "PORT"],
    [{ DATABASE_URL: "mysql://localhost/db" }, "DATABASE_URL"],
    [{ DATABASE_URL: "not a url" }, "DATABASE_URL"],
    [{ REDIS_URL: "http://localhost" }, "REDIS_URL"],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL"],
    [{ PHONEBOOK_ADMIN_TOKEN: "short" }, "PHONEBOOK_ADMIN_TOKEN"],
    [{ PHONEBOOK_CURSOR_SECRET: "short" }, "PHONEBOOK_CURSOR_SECRET"],
    [{ DATABASE_QUERY_TIMEOUT_MS: "soon" }, "DATABASE_QUERY_TIMEOUT_MS"],
    [{ DATABASE_QUERY_TIMEOUT_MS: "10" }, "DATABASE_QUERY_TIMEOUT_MS"],
  ];
  for (const [env, variable] of bad) {
    test(`a bad ${variable} stops the start with a message naming it`, () => {
      assert.throws(
        () => loadConfig(env),
        (error: unknown) =>
          error instanceof ConfigError && error.variable === variable && error.message.includes(variable),
      );
    });
  }
});
