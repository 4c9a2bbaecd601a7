import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CompiledQuery } from "kysely";
import { ConfigError, loadConfig } from "../src/config.ts";
import { signMetaPayload } from "../src/http/webhooks/meta-delivery.ts";
import { queueFigureQueries } from "../src/store/repositories/webhooks.ts";
import { assertError } from "./helpers/assertions.ts";
import { storeKinds } from "./helpers/env.ts";
import { eventually } from "./helpers/eventually.ts";
import {
  createHarness,
  createTestStore,
  type Harness,
  seedOrganization,
  type Tenant,
} from "./helpers/harness.ts";
import { waitForImport } from "./helpers/imports.ts";
import { messagesDelivery } from "./helpers/meta-delivery.ts";
import { startServerProcess } from "./helpers/server-process.ts";
import { Receiver } from "./helpers/webhook-receiver.ts";

const TOKEN = "metrics-token-0123456789";
const META = { META_APP_SECRET: "meta-app-secret-for-metrics", META_VERIFY_TOKEN: "verify-me" };

/** The value of one sample of the exposition text, or undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const pair of (match[2] ?? "").matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g))
      found[pair[1]!] = pair[2]!;
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(match[3]);
  }
  return undefined;
}

describe("metrics configuration", () => {
  test("off by default; METRICS_HOST defaults to HOST; bad values name their variable", () => {
    const config = loadConfig({});
    assert.equal(config.metricsToken, undefined);
    assert.equal(config.metricsPort, undefined);
    assert.equal(config.metricsHost, "127.0.0.1");
    assert.equal(loadConfig({ HOST: "0.0.0.0" }).metricsHost, "0.0.0.0");
    assert.equal(loadConfig({ HOST: "0.0.0.0", METRICS_HOST: "10.0.0.5" }).metricsHost, "10.0.0.5");
    assert.equal(loadConfig({ METRICS_PORT: "9464" }).metricsPort, 9464);
    for (const [env, variable] of [
      [{ METRICS_PORT: "ninety" }, "METRICS_PORT"],
      [{ METRICS_PORT: "70000" }, "METRICS_PORT"],
      [{ METRICS_TOKEN: "short" }, "METRICS_TOKEN"],
    ] as const) {
      assert.throws(
        () => loadConfig(env),
        (error: unknown) => error instanceof ConfigError && error.variable === variable,
      );
    }
  });
});

describe("GET /metrics disabled", () => {
  test("without METRICS_TOKEN or METRICS_PORT, /metrics is a 404 in the envelope", async () => {
    const h = await createHarness("sqlite");
    try {
      const res = await h.inject({
        method: "GET",
        url: "/metrics",
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assertError(res, 404, "route_not_found");
      assert.equal(h.app.metrics, undefined);
    } finally {
      await h.close();
    }
  });
});

for (const kind of storeKinds()) {
  describe(`GET /metrics with METRICS_TOKEN [${kind}]`, () => {
    let h: Harness;
    let t: Tenant;
    let limited: Tenant;
    let pnid: string;
    const scrape = async () => {
      const res = await h.inject({
        method: "GET",
        url: "/metrics",
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.match(String(res.headers["content-type"]), /^text\/plain; version=0\.0\.4/);
      return res.body;
    };
    before(async () => {
      h = await createHarness(kind, { METRICS_TOKEN: TOKEN, ...META }, { realRateLimits: true });
      t = await h.tenant("Metered", { rateLimits: { read_per_minute: 10_000, write_per_minute: 10_000 } });
      limited = await h.tenant("Limited", { rateLimits: { read_per_minute: 1 } });
      pnid = (await h.account(t.orgId)).phoneNumberId;
    });
    after(async () => {
      await h.close();
    });

    test("the token is required: missing → 401 missing_api_key, wrong → 401 invalid_api_key", async () => {
      assertError(
        await h.inject({ method: "GET", url: "/metrics" }),
        401,
        "missing_api_key",
        "Authorization",
      );
      assertError(
        await h.inject({
          method: "GET",
          url: "/metrics",
          headers: { authorization: "Bearer not-the-token-at-all" },
        }),
        401,
        "invalid_api_key",
        "Authorization",
      );
    });

    test("requests are counted and timed by route pattern and status, never by raw URL", async () => {
      const created = await h.inject({
        method: "POST",
        url: "/v1/contacts",
        headers: t.auth,
        payload: { phone_number: "+628111333001" },
      });
      assert.equal(created.statusCode, 201, created.body);
      const id = created.json().data.id as string;
      for (let i = 0; i < 3; i++) {
        const res = await h.inject({
          method: "GET",
          url: `/v1/contacts/ctc_not-an-id-${i}`,
          headers: t.auth,
        });
        assert.equal(res.statusCode, 400, "a malformed id");
      }
      const ok = await h.inject({ method: "GET", url: `/v1/contacts/${id}`, headers: t.auth });
      assert.equal(ok.statusCode, 200);
      await h.inject({ method: "GET", url: "/no/such/route/ctc_123", headers: t.auth });

      const text = await scrape();
      const route = { method: "GET", route: "/v1/contacts/:id" };
      assert.equal(sample(text, "phonebook_http_requests_total", { ...route, status: "200" }), 1);
      assert.equal(sample(text, "phonebook_http_requests_total", { ...route, status: "400" }), 3);
      assert.equal(
        sample(text, "phonebook_http_request_duration_seconds_count", { ...route, status: "400" }),
        3,
      );
      assert.equal(
        sample(text, "phonebook_http_requests_total", {
          method: "POST",
          route: "/v1/contacts",
          status: "201",
        }),
        1,
      );
      assert.equal(sample(text, "phonebook_http_requests_total", { route: "unmatched", status: "404" }), 1);
      assert.ok(!text.includes(id), "no contact id appears in the metrics");
      assert.ok(!text.includes("/no/such"), "no raw URL appears in the metrics");
      assert.ok(!text.includes("not-an-id"), "no raw path parameter appears in the metrics");
      // Store statements are timed by kind.
      assert.ok(
        (sample(text, "phonebook_store_query_duration_seconds_count", {
          dialect: kind,
          operation: "select",
        }) ?? 0) > 0,
      );
      assert.ok(
        (sample(text, "phonebook_store_query_duration_seconds_count", {
          dialect: kind,
          operation: "insert",
        }) ?? 0) > 0,
      );
      // Process metrics from prom-client's defaults.
      assert.ok(sample(text, "process_cpu_user_seconds_total") !== undefined);
      if (kind === "postgres") {
        assert.equal(sample(text, "phonebook_db_pool_max_connections"), 10);
        assert.ok((sample(text, "phonebook_db_pool_connections") ?? 0) >= 1);
        // A number at each scrape (the scrape's own import-count query may be waiting for a connection).
        assert.ok((sample(text, "phonebook_db_pool_waiting_requests") ?? -1) >= 0);
      } else {
        assert.equal(sample(text, "phonebook_db_pool_connections"), undefined, "SQLite has no pool");
      }
    });

    test("rate-limit rejections and idempotency replays are counted", async () => {
      await h.inject({ method: "GET", url: "/v1/me", headers: limited.auth });
      const rejected = await h.inject({ method: "GET", url: "/v1/me", headers: limited.auth });
      assertError(rejected, 429, "rate_limit_exceeded");
      const headers = { ...t.auth, "idempotency-key": "metrics-replay-1" };
      for (let i = 0; i < 3; i++) {
        const res = await h.inject({
          method: "POST",
          url: "/v1/labels",
          headers,
          payload: { name: "replayed" },
        });
        assert.equal(res.statusCode, 201, res.body);
      }
      const text = await scrape();
      assert.equal(
        sample(text, "phonebook_rate_limit_rejections_total", { surface: "native", bucket: "read" }),
        1,
      );
      assert.equal(sample(text, "phonebook_idempotency_replays_total", { surface: "native" }), 2);
    });

    test("Meta webhook deliveries: accepted and rejected", async () => {
      const body = messagesDelivery(pnid, { wa_id: "628111333999", name: "Inbound" });
      const send = (signature: string | undefined) =>
        h.inject({
          method: "POST",
          url: "/webhooks/whatsapp",
          headers: {
            "content-type": "application/json",
            ...(signature ? { "x-hub-signature-256": signature } : {}),
          },
          payload: body,
        });
      assert.equal((await send(signMetaPayload(META.META_APP_SECRET, body))).statusCode, 200);
      assert.equal((await send(signMetaPayload(META.META_APP_SECRET, body))).statusCode, 200);
      assert.equal((await send(undefined)).statusCode, 401);
      const text = await scrape();
      assert.equal(
        sample(text, "phonebook_meta_webhook_deliveries_total", { outcome: "accepted", status: "200" }),
        2,
      );
      assert.equal(
        sample(text, "phonebook_meta_webhook_deliveries_total", { outcome: "rejected", status: "401" }),
        1,
      );
    });

    test("imports: jobs by status and rows committed", async () => {
      const before = sample(await scrape(), "phonebook_import_rows_total") ?? 0;
      const csv = [
        "phone_number,name",
        ...Array.from({ length: 12 }, (_, i) => `+62811444${String(i).padStart(4, "0")},Row ${i}`),
      ].join("\n");
      const res = await h.inject({
        method: "POST",
        url: `/v1/imports?phone_number_id=${pnid}&mode=create`,
        headers: { ...t.auth, "content-type": "text/csv" },
        payload: csv,
      });
      assert.equal(res.statusCode, 202, res.body);
      const done = await waitForImport(h, res.json().data.id, t.auth);
      assert.equal(done.status, "completed");
      const text = await scrape();
      assert.equal((sample(text, "phonebook_import_rows_total") ?? 0) - before, 12);
      assert.equal(sample(text, "phonebook_import_jobs", { status: "completed" }), 1);
      assert.equal(sample(text, "phonebook_import_jobs", { status: "failed" }), 0);
    });
  });
}

for (const kind of storeKinds()) {
  describe(`outbound webhook queue metrics [${kind}]`, () => {
    const env = { METRICS_TOKEN: TOKEN, WEBHOOKS_ALLOW_HTTP: "true", WEBHOOKS_ALLOW_PRIVATE: "true" };
    const scrapeOf = (h: Harness) => async () => {
      const res = await h.inject({
        method: "GET",
        url: "/metrics",
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(res.statusCode, 200, res.body);
      return res.body;
    };

    test("queue depth and lag read from the index of pending deliveries; a disabled endpoint's are not lag", async () => {
      // No worker: deliveries stay pending and due.
      const h = await createHarness(kind, env, { webhooks: false });
      try {
        const scrape = scrapeOf(h);
        const t = await h.tenant("Queue Co");
        const pnid = (await h.account(t.orgId)).phoneNumberId;
        let text = await scrape();
        assert.equal(sample(text, "phonebook_webhook_queue_depth"), 0);
        assert.equal(sample(text, "phonebook_webhook_queue_lag_seconds"), 0);
        const sub = await h.inject({
          method: "POST",
          url: "/v1/webhook_subscriptions",
          headers: t.auth,
          payload: { url: "http://127.0.0.1:9/hook", events: ["contact.created"] },
        });
        assert.equal(sub.statusCode, 201, sub.body);
        const started = Date.now();
        for (let i = 0; i < 3; i++) {
          const res = await h.inject({
            method: "POST",
            url: `/v1/${pnid}/contacts`,
            headers: t.auth,
            payload: { phone_number: `+62811555000${i}` },
          });
          assert.equal(res.statusCode, 201, res.body);
        }
        text = await eventually(
          scrape,
          (body) => (sample(body, "phonebook_webhook_queue_lag_seconds") ?? 0) >= 0.05,
          "a lag that grows while nothing delivers",
        );
        assert.equal(sample(text, "phonebook_webhook_queue_depth"), 3);
        const lag = sample(text, "phonebook_webhook_queue_lag_seconds")!;
        assert.ok(
          lag <= (Date.now() - started) / 1000 + 0.001,
          `lag ${lag} s is the oldest due delivery's age`,
        );
        // A disabled endpoint's deliveries wait for it: still queued, no longer lag.
        const off = await h.inject({
          method: "PATCH",
          url: `/v1/webhook_subscriptions/${sub.json().data.id}`,
          headers: t.auth,
          payload: { enabled: false },
        });
        assert.equal(off.statusCode, 200, off.body);
        text = await scrape();
        assert.equal(sample(text, "phonebook_webhook_queue_depth"), 3);
        assert.equal(sample(text, "phonebook_webhook_queue_lag_seconds"), 0);
        if (kind === "sqlite") {
          // Cheap on a big outbox: both statements search the partial index of pending deliveries.
          const queries = queueFigureQueries(h.store.db, Date.now());
          for (const query of [queries.pending, queries.oldestDue]) {
            const compiled = query.compile();
            const plan = await h.store.db.executeQuery<{ detail: string }>(
              CompiledQuery.raw(`EXPLAIN QUERY PLAN ${compiled.sql}`, [...compiled.parameters]),
            );
            const details = plan.rows.map((r) => r.detail).join("; ");
            assert.match(details, /INDEX webhook_deliveries_due/, details);
            assert.doesNotMatch(details, /SCAN d\b|SCAN webhook_deliveries\b(?! USING)/, details);
          }
        }
      } finally {
        await h.close();
      }
    });

    test("delivery lag histogram: first attempts delivered by this process", async () => {
      const receiver = await new Receiver().start();
      const h = await createHarness(kind, env, { webhooks: { pollMs: 20 } });
      try {
        const t = await h.tenant("Lag Co");
        const pnid = (await h.account(t.orgId)).phoneNumberId;
        await h.inject({
          method: "POST",
          url: "/v1/webhook_subscriptions",
          headers: t.auth,
          payload: { url: `${receiver.url}/hook`, events: ["contact.created"] },
        });
        await h.inject({
          method: "POST",
          url: `/v1/${pnid}/contacts`,
          headers: t.auth,
          payload: { phone_number: "+628115550010" },
        });
        await receiver.waitFor(() => receiver.received.length === 1, "the delivery");
        const text = await eventually(
          scrapeOf(h),
          (body) => (sample(body, "phonebook_webhook_delivery_lag_seconds_count") ?? 0) >= 1,
          "the delivery's lag observed",
        );
        assert.equal(sample(text, "phonebook_webhook_queue_depth"), 0);
        assert.ok((sample(text, "phonebook_webhook_delivery_lag_seconds_sum") ?? -1) >= 0);
      } finally {
        await h.close();
        await receiver.close();
      }
    });
  });
}

describe("METRICS_PORT: a separate listener (server process)", () => {
  test("/metrics answers on the metrics port (with the token) and not on the API port", async () => {
    const testStore = await createTestStore("sqlite");
    await testStore.store.migrate();
    const seeded = await seedOrganization(testStore.store.db, {
      name: "Port Co",
      phoneNumberId: "106540352249001",
      phoneNumber: "+628111555001",
    });
    const server = await startServerProcess({ ...testStore.env, METRICS_PORT: "0", METRICS_TOKEN: TOKEN });
    try {
      let metricsUrl: string | undefined;
      const deadline = Date.now() + 30_000;
      while (!metricsUrl) {
        for (const line of server.output) {
          const match = /Metrics listening at (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(line);
          if (match) metricsUrl = match[1];
        }
        if (!metricsUrl) {
          assert.ok(Date.now() < deadline, `no metrics listener:\n${server.output.join("\n")}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const me = await fetch(`${server.url}/v1/me`, { headers: seeded.auth });
      assert.equal(me.status, 200);
      const onApiPort = await fetch(`${server.url}/metrics`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(onApiPort.status, 404);
      assert.equal(((await onApiPort.json()) as { error: { code: string } }).error.code, "route_not_found");

      const unauthorised = await fetch(metricsUrl);
      assert.equal(unauthorised.status, 401);
      assert.equal(
        ((await unauthorised.json()) as { error: { code: string } }).error.code,
        "missing_api_key",
      );
      const scraped = await fetch(metricsUrl, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(scraped.status, 200);
      const text = await scraped.text();
      assert.equal(
        sample(text, "phonebook_http_requests_total", { method: "GET", route: "/v1/me", status: "200" }),
        1,
      );
      const other = await fetch(metricsUrl.replace("/metrics", "/v1/me"));
      assert.equal(other.status, 404);
    } finally {
      await server.kill("SIGTERM");
      await testStore.drop();
    }
  });
});
