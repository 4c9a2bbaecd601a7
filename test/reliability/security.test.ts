/**
 * Security checks: secrets never in logs (debug level, captured pino stream),
 * API keys hashed at rest (the whole store is read), timing-safe comparisons
 * (a unit test of constantTimeEqual and a source check of every secret
 * comparison under src/), request body limits, and the headers a security
 * scanner expects on every response of every route.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { sql } from "kysely";
import { buildApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { constantTimeEqual } from "../../src/domain/auth.ts";
import { createApiKey, createOrganization } from "../../src/domain/organizations.ts";
import { loggedUrl } from "../../src/logger.ts";
import { tableNames } from "../helpers/digest.ts";
import { storeKinds } from "../helpers/env.ts";
import { fuzzRoutes } from "../helpers/fuzz.ts";
import { ADMIN_TOKEN, createHarness, createTestStore, type Harness } from "../helpers/harness.ts";

const SRC = join(import.meta.dirname, "..", "..", "src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith(".ts") ? [path] : [];
  });
}

const SECRET_NAME = /token|secret|hash|signature|digest|hmac|password/i;
const SAFE_OPERAND =
  /^(undefined|null|true|false|""|''|\d[\w.]*|"[a-z0-9_-]*"|'[a-z0-9_-]*'|[\w.]*\.length)$/i;

/** True when a line compares something named like a secret with ==, ===, != or !== (short-circuiting). */
function comparesSecret(line: string): boolean {
  const operator = /\s*(?:===|!==|==|!=)\s*/g;
  for (let match = operator.exec(line); match; match = operator.exec(line)) {
    const left = /([\w.$"']+)$/.exec(line.slice(0, match.index))?.[1] ?? "";
    const right = /^([\w.$"']+)/.exec(line.slice(match.index + match[0].length))?.[1] ?? "";
    if (SAFE_OPERAND.test(left) || SAFE_OPERAND.test(right)) continue;
    if (/typeof\s*$/.test(line.slice(0, match.index - left.length))) continue;
    if (SECRET_NAME.test(left) || SECRET_NAME.test(right)) return true;
  }
  return false;
}

/** Collects every log line of an app built with `logStream`. */
function logCapture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, stream };
}

describe("secrets never reach the logs", () => {
  test("keys, tokens and secrets are absent from debug-level logs of successes, failures and store errors", async () => {
    const testStore = await createTestStore("sqlite");
    const capture = logCapture();
    const cursorSecret = "cursor-secret-0123456789-abcdef";
    const metaSecret = "meta-app-secret-0123456789";
    const verifyToken = "meta-verify-token-0123456789";
    const config = loadConfig({
      ...testStore.env,
      LOG_LEVEL: "trace",
      PHONEBOOK_ADMIN_TOKEN: ADMIN_TOKEN,
      PHONEBOOK_CURSOR_SECRET: cursorSecret,
      META_APP_SECRET: metaSecret,
      META_VERIFY_TOKEN: verifyToken,
    });
    const app = await buildApp(config, { store: testStore.store, logStream: capture.stream });
    const org = await createOrganization(testStore.store.db, { name: "Log Co" });
    const { key } = await createApiKey(testStore.store.db, org.id, {});
    const secrets = [
      key,
      ADMIN_TOKEN,
      cursorSecret,
      metaSecret,
      verifyToken,
      createHash("sha256").update(key).digest("hex"),
    ];
    try {
      const adminCreated = await app.inject({
        method: "POST",
        url: `/admin/v1/organizations/${org.id}/api_keys`,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        payload: { label: "logged?" },
      });
      assert.equal(adminCreated.statusCode, 201, adminCreated.body);
      const createdKey = adminCreated.json().data.key as string;
      secrets.push(createdKey);
      const requests = [
        { method: "GET", url: "/v1/me", headers: { authorization: `Bearer ${key}` } },
        { method: "GET", url: "/v1/me", headers: { "x-api-key": createdKey } },
        { method: "GET", url: "/v1/contacts?limit=1", headers: { authorization: `Bearer ${key}` } },
        { method: "GET", url: "/v1/me", headers: { authorization: `Bearer ${key}x` } },
        { method: "GET", url: "/v1/me", headers: { "x-api-key": `${createdKey.slice(0, -1)}Q` } },
        {
          method: "GET",
          url: "/admin/v1/organizations",
          headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        },
        {
          method: "GET",
          url: "/admin/v1/organizations",
          headers: { authorization: `Bearer ${ADMIN_TOKEN}x` },
        },
        { method: "POST", url: "/v1/contacts", headers: { authorization: `Bearer ${key}` }, payload: "{" },
        {
          method: "POST",
          url: "/webhooks/whatsapp",
          headers: { "x-hub-signature-256": `sha256=${metaSecret}` },
          payload: {},
        },
        {
          method: "GET",
          url: `/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1&hub.verify_token=x`,
          headers: {},
        },
      ] as const;
      for (const request of requests) await app.inject(request as never);
      // Store failures are logged with their cause: the key must not travel with it.
      await testStore.store.close();
      const failed = await app.inject({
        method: "GET",
        url: "/v1/contacts",
        headers: { authorization: `Bearer ${createdKey}` },
      });
      assert.ok(failed.statusCode >= 500 || failed.statusCode === 200, failed.body);
      const text = capture.lines.join("");
      assert.ok(capture.lines.length > 10, "the logs were captured");
      assert.equal(app.log.level, "trace", "the most verbose level was on");
      for (const secret of secrets) {
        assert.ok(!text.includes(secret), `a secret (…${secret.slice(-6)}) appears in the logs`);
      }
      assert.ok(
        text.includes("[redacted]") || !text.includes("authorization"),
        "credential headers are redacted",
      );
    } finally {
      await app.close();
      await testStore.drop();
    }
  });
});

describe("personal data in request logs", () => {
  test("query values are redacted in request logs, except the few that are not personal", async () => {
    const testStore = await createTestStore("sqlite");
    const capture = logCapture();
    const config = loadConfig({ ...testStore.env, LOG_LEVEL: "info" });
    const app = await buildApp(config, { store: testStore.store, logStream: capture.stream });
    const org = await createOrganization(testStore.store.db, { name: "Log Co" });
    const { key } = await createApiKey(testStore.store.db, org.id, {});
    try {
      const res = await app.inject({
        method: "GET",
        url: "/v1/contacts?search=Quatermaine&phone=%2B6281234567890&limit=5",
        headers: { authorization: `Bearer ${key}` },
      });
      assert.equal(res.statusCode, 200, res.body);
      const text = capture.lines.join("");
      for (const personal of ["Quatermaine", "6281234567890"]) {
        assert.ok(!text.includes(personal), `${personal} appears in the logs`);
      }
      assert.ok(
        text.includes("/v1/contacts?search=[redacted]&phone=[redacted]&limit=5"),
        "the logged URL keeps the path, the parameter names and the limit",
      );
    } finally {
      await app.close();
      await testStore.drop();
    }
  });

  test("loggedUrl: paths stay whole; names without values, odd encodings and repeated names are handled", () => {
    assert.equal(loggedUrl("/v1/contacts/ctc_01"), "/v1/contacts/ctc_01");
    assert.equal(loggedUrl("/v1/contacts?"), "/v1/contacts?");
    assert.equal(loggedUrl("/v1/contacts?search"), "/v1/contacts?search");
    assert.equal(loggedUrl("/v1/x?a=1&a=2&limit=3"), "/v1/x?a=[redacted]&a=[redacted]&limit=3");
    assert.equal(loggedUrl("/v1/x?%E0%A4%A=1"), "/v1/x?%E0%A4%A=[redacted]");
    assert.equal(loggedUrl("/v1/x?li%6Dit=4"), "/v1/x?li%6Dit=4");
  });
});

for (const kind of storeKinds()) {
  describe(`API keys at rest [${kind}]`, () => {
    let h: Harness;
    before(async () => {
      h = await createHarness(kind);
    });
    after(async () => {
      await h.close();
    });

    test("only a SHA-256 hash and the last 4 characters are stored; no table holds a key", async () => {
      const tenant = await h.tenant("Rest Co");
      const res = await h.inject({
        method: "POST",
        url: `/admin/v1/organizations/${tenant.orgId}/api_keys`,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        payload: { label: "second" },
      });
      assert.equal(res.statusCode, 201, res.body);
      const keys = [tenant.key, res.json().data.key as string];
      const rows = await h.store.db
        .selectFrom("api_keys")
        .selectAll()
        .where("organization_id", "=", tenant.orgId)
        .execute();
      assert.equal(rows.length, 2);
      for (const key of keys) {
        const row = rows.find((r) => r.key_hash === createHash("sha256").update(key).digest("hex"));
        assert.ok(row, "the key is stored as its SHA-256");
        assert.equal(row.last4, key.slice(-4));
      }
      // Nothing anywhere in the store contains a key or the admin token.
      for (const table of await tableNames(h.store)) {
        const { rows: all } = await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(table)}`.execute(
          h.store.db,
        );
        const dump = JSON.stringify(all);
        for (const secret of [...keys, ADMIN_TOKEN])
          assert.ok(!dump.includes(secret), `${table} holds a secret`);
        assert.ok(!dump.includes(keys[0]!.slice(8, 20)), `${table} holds part of a key`);
      }
    });
  });
}

describe("timing-safe comparisons", () => {
  test("constantTimeEqual compares whole values, of any length, through crypto.timingSafeEqual", () => {
    assert.equal(constantTimeEqual("pb_live_abc", "pb_live_abc"), true);
    assert.equal(constantTimeEqual("pb_live_abc", "pb_live_abd"), false);
    assert.equal(constantTimeEqual("pb_live_abc", "pb_live_ab"), false);
    assert.equal(constantTimeEqual("", ""), true);
    assert.equal(constantTimeEqual("é", "e\u0301"), false);
    assert.equal(constantTimeEqual("a".repeat(10_000), "a".repeat(10_000)), true);
    const source = readFileSync(join(SRC, "domain", "auth.ts"), "utf8");
    const body = /export function constantTimeEqual[\s\S]*?\n}/.exec(source)?.[0] ?? "";
    assert.match(body, /timingSafeEqual\(/, "constantTimeEqual delegates to crypto.timingSafeEqual");
  });

  test("no secret under src/ is compared with ==/===; secret comparisons go through constantTimeEqual", () => {
    const compare = { test: comparesSecret };
    // The check itself can fail: it catches the comparisons it is meant to catch.
    assert.ok(compare.test("if (signature === expected) return;"));
    assert.ok(compare.test("return row.key_hash === hashApiKey(presented);"));
    assert.ok(compare.test("if (provided !== config.verifyToken)"));
    assert.ok(!compare.test("if (token === undefined) return;"));
    assert.ok(!compare.test("if (a.length === b.length) return;"));
    const offenders: string[] = [];
    let constantTimeUses = 0;
    for (const file of sourceFiles(SRC)) {
      const lines = readFileSync(file, "utf8").split("\n");
      lines.forEach((line, i) => {
        if (/^\s*(\/\/|\*)/.test(line)) return;
        if (/constantTimeEqual\(|timingSafeEqual\(/.test(line)) constantTimeUses += 1;
        if (compare.test(line)) offenders.push(`${file}:${i + 1}: ${line.trim()}`);
      });
    }
    assert.deepEqual(offenders, [], "secrets compared with a short-circuiting operator");
    assert.ok(constantTimeUses >= 3, "API keys and the admin token are compared in constant time");
  });
});

describe("request limits and response headers", () => {
  let h: Harness;
  let auth: { authorization: string };
  before(async () => {
    h = await createHarness("sqlite");
    auth = (await h.tenant("Header Co")).auth;
    await h.account((await h.tenant("Other")).orgId);
  });
  after(async () => {
    await h.close();
  });

  test("a body over 1 MiB is 413 payload_too_large; one just under is read (and judged on its fields)", async () => {
    const over = JSON.stringify({ name: "x".repeat(1024 * 1024) });
    const res = await h.inject({
      method: "POST",
      url: "/v1/contacts",
      headers: { ...auth, "content-type": "application/json" },
      payload: over,
    });
    assert.equal(res.statusCode, 413, res.body);
    assert.equal(res.json().error.code, "payload_too_large");
    const under = JSON.stringify({ name: "x".repeat(1024 * 1024 - 100) });
    const ok = await h.inject({
      method: "POST",
      url: "/v1/contacts",
      headers: { ...auth, "content-type": "application/json" },
      payload: under,
    });
    assert.equal(ok.statusCode, 400, ok.body);
    assert.notEqual(ok.json().error.code, "payload_too_large");
    const lying = await h.inject({
      method: "POST",
      url: "/v1/contacts",
      headers: { ...auth, "content-type": "application/json", "content-length": String(10 * 1024 * 1024) },
      payload: "{}",
    });
    assert.ok([400, 413].includes(lying.statusCode), lying.body);
  });

  test("every route, error and unknown path answers with the security headers; none says X-Powered-By", async () => {
    const cases = fuzzRoutes(h.app).map((r) => ({
      method: r.method,
      url: r.template.replace(/\{[^}]+\}/g, "x"),
      headers: r.template.startsWith("/admin/") ? { authorization: `Bearer ${ADMIN_TOKEN}` } : auth,
    }));
    cases.push(
      { method: "GET", url: "/v1/health", headers: auth },
      { method: "GET", url: "/v1/me", headers: auth },
      { method: "GET", url: "/v1/me", headers: {} as typeof auth },
      { method: "GET", url: "/nowhere", headers: auth },
      { method: "GET", url: "/%FF", headers: auth },
      { method: "PUT", url: "/v1/contacts", headers: auth },
    );
    for (const c of cases) {
      const res = await h.inject({ method: c.method as "GET", url: c.url, headers: c.headers });
      const where = `${c.method} ${c.url} → ${res.statusCode}`;
      assert.equal(res.headers["x-content-type-options"], "nosniff", where);
      assert.equal(res.headers["cache-control"], "no-store", where);
      assert.equal(res.headers["referrer-policy"], "no-referrer", where);
      assert.equal(res.headers["x-frame-options"], "DENY", where);
      assert.match(String(res.headers["content-security-policy"]), /default-src 'none'/, where);
      assert.match(String(res.headers["content-security-policy"]), /frame-ancestors 'none'/, where);
      assert.equal(res.headers["x-powered-by"], undefined, where);
      assert.equal(res.headers.server, undefined, where);
      // Every answer is JSON, except the export's own formats (CSV by default, NDJSON on request).
      const expected =
        /\/contacts\/export/.test(c.url) && res.statusCode === 200 ? /^text\/csv/ : /^application\/json/;
      if (res.body.length > 0) assert.match(String(res.headers["content-type"]), expected, where);
    }
  });

  test("the browsable /docs keeps working: no JSON-only policy there, but nosniff and no framing", async () => {
    const res = await h.inject({ method: "GET", url: "/docs/" });
    assert.ok(res.statusCode < 400, `${res.statusCode}`);
    const page =
      res.statusCode >= 300 ? await h.inject({ method: "GET", url: String(res.headers.location) }) : res;
    assert.equal(page.statusCode, 200);
    assert.equal(page.headers["content-security-policy"], undefined);
    assert.equal(page.headers["x-content-type-options"], "nosniff");
    assert.equal(page.headers["x-frame-options"], "DENY");
  });
});
