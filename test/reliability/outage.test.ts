/**
 * Store outages, simulated with a TCP proxy of our own between the app and
 * the shared PostgreSQL / Redis (never stopping the shared servers). Under a
 * steady load of reads and writes:
 * - PostgreSQL cut (every connection reset, new ones refused): each request
 *   started during the outage gets 503 `service_unavailable` in the native
 *   shape (never a 500, never a hang), `/v1/ready` is 503 while `/v1/health`
 *   stays 200; when the proxy forwards again the same app recovers without a
 *   restart, and every write acknowledged before, during or after is stored.
 * - PostgreSQL partition (connections open, no byte passes): requests fail
 *   with 503 once DATABASE_QUERY_TIMEOUT_MS has passed instead of hanging,
 *   and the app recovers once the network heals.
 * - Redis cut: the app keeps serving.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import type { Db } from "../../src/store/store.ts";
import { hasRedis, REDIS_URL, storeKinds } from "../helpers/env.ts";
import { errorShapeProblem } from "../helpers/error-shape.ts";
import { createTestStore, seedOrganization } from "../helpers/harness.ts";
import { withTimeout } from "../helpers/reliability.ts";
import { TcpProxy } from "../helpers/tcp-proxy.ts";

/** "Never a hang": a request answered after this is a failure. Generous, because a loaded machine is slow, not hung. */
const REQUEST_TIMEOUT_MS = 120_000;

interface Sample {
  startedAt: number;
  finishedAt: number;
  status: number;
  body: string;
  url: string;
  headers: Record<string, unknown>;
}

/** An organisation with one account; returns its auth header. */
async function seed(db: Db): Promise<{ authorization: string }> {
  const { auth } = await seedOrganization(db, {
    name: "Outage Co",
    phoneNumberId: "300000000000001",
    phoneNumber: "+628111888000",
  });
  return auth;
}

/** `concurrency` loops of mixed reads and creates until `stop()`; every answer is recorded. */
function load(app: FastifyInstance, auth: { authorization: string }, concurrency: number) {
  const samples: Sample[] = [];
  const created = new Set<string>();
  let running = true;
  let n = 0;
  const loop = async (i: number) => {
    while (running) {
      n += 1;
      const write = (n + i) % 3 === 0;
      const phone = `+62813${String(process.pid % 1000).padStart(3, "0")}${String(n).padStart(6, "0")}`;
      // Every request needs the store (/v1/me may be answered from the key cache alone).
      const url = write ? "/v1/contacts" : n % 2 === 0 ? "/v1/contacts?limit=5" : "/v1/contacts?search=load";
      const startedAt = Date.now();
      const res = await withTimeout(
        app.inject({
          method: write ? "POST" : "GET",
          url,
          headers: auth,
          ...(write ? { payload: { phone_number: phone, name: "Load" } } : {}),
        }),
        REQUEST_TIMEOUT_MS,
        `${write ? "POST" : "GET"} ${url}`,
      );
      samples.push({
        startedAt,
        finishedAt: Date.now(),
        status: res.statusCode,
        body: res.body,
        url,
        headers: res.headers,
      });
      if (write && res.statusCode === 201) created.add(res.json().data.id);
      // Yield so the event loop also serves the test's own probes.
      await new Promise((r) => setImmediate(r));
    }
  };
  const loops = Array.from({ length: concurrency }, (_, i) => loop(i));
  return {
    samples,
    created,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, ms: number, check: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (await check()) return Date.now() - start;
    await sleep(100);
  }
  throw new Error(`${what} did not happen within ${ms} ms`);
}

/** A fresh PostgreSQL test database reached through a TcpProxy of our own; the URL points at the proxy. */
async function proxiedPostgres() {
  const testStore = await createTestStore("postgres");
  const target = new URL(testStore.env.DATABASE_URL!);
  const proxy = await TcpProxy.start(Number(target.port || 5432), target.hostname);
  const proxied = new URL(target);
  proxied.port = String(proxy.port);
  return { testStore, proxy, databaseUrl: proxied.toString() };
}

if (storeKinds().includes("postgres")) {
  describe("PostgreSQL outage [postgres]", () => {
    test("503 service_unavailable while the store is cut, recovery without a restart", async () => {
      const { testStore, proxy, databaseUrl } = await proxiedPostgres();
      const app = await buildApp(loadConfig({ DATABASE_URL: databaseUrl, LOG_LEVEL: "silent" }));
      try {
        await app.ready();
        const auth = await seed(testStore.store.db);
        const ready = async () => (await app.inject({ method: "GET", url: "/v1/ready" })).statusCode;

        const traffic = load(app, auth, 8);
        await sleep(1000);
        const cutAt = Date.now();
        proxy.cut();
        await sleep(2500);
        assert.equal(await ready(), 503, "/v1/ready during the outage");
        const health = await app.inject({ method: "GET", url: "/v1/health" });
        assert.equal(health.statusCode, 200, "liveness does not depend on the store");
        const restoredAt = Date.now();
        proxy.restore();
        const recoveryMs = await waitFor(
          "recovery (/v1/ready 200)",
          300_000, // generous: only a store that never comes back should reach it
          async () => (await ready()) === 200,
        );
        await sleep(1000);
        const recoveredAt = Date.now();
        await sleep(1000);
        await traffic.stop();

        const before = traffic.samples.filter((s) => s.finishedAt < cutAt);
        // Requests wholly inside the outage (one started in the first 100 ms may still have used a
        // live connection; one that waited for a connection may be served once the store is back).
        const during = traffic.samples.filter((s) => s.startedAt >= cutAt + 100 && s.finishedAt < restoredAt);
        const afterRecovery = traffic.samples.filter((s) => s.startedAt >= recoveredAt);
        const describe = (list: Sample[]) => {
          const counts = new Map<number, number>();
          for (const s of list) counts.set(s.status, (counts.get(s.status) ?? 0) + 1);
          return [...counts].map(([status, n]) => `${status}×${n}`).join(" ");
        };
        assert.ok(
          before.length > 0 && during.length > 0 && afterRecovery.length > 0,
          "load ran in every phase",
        );
        for (const s of before) assert.ok(s.status < 300, `before the cut: ${s.status} ${s.body}`);
        for (const s of during) {
          assert.equal(s.status, 503, `during the outage ${s.url}: ${s.status} ${s.body}`);
          assert.equal(JSON.parse(s.body).error.code, "service_unavailable");
          assert.equal(errorShapeProblem(s.url, s.status, s.headers, s.body), undefined);
        }
        for (const s of afterRecovery) assert.ok(s.status < 300, `after recovery: ${s.status} ${s.body}`);
        for (const s of traffic.samples)
          assert.ok(s.status === 503 || s.status < 300, `${s.status} ${s.body}`);

        // Every acknowledged create is stored.
        const ids = [...traffic.created];
        const rows = await testStore.store.db
          .selectFrom("contacts")
          .select("id")
          .where("id", "in", ids)
          .execute();
        assert.equal(rows.length, ids.length, "an acknowledged create is missing");
        console.log(
          `# outage [postgres]: before ${describe(before)}; during ${describe(during)}; after ${describe(afterRecovery)}; ` +
            `ready again ${recoveryMs} ms after the store returned; ${ids.length} acknowledged creates all stored`,
        );
      } finally {
        await app.close();
        await proxy.close();
        await testStore.drop();
      }
    });

    test("a partition (no byte passes, nothing is reset): 503 after the query timeout, not a hang; recovery after", async () => {
      const { testStore, proxy, databaseUrl } = await proxiedPostgres();
      const app = await buildApp(
        loadConfig({
          DATABASE_URL: databaseUrl,
          DATABASE_QUERY_TIMEOUT_MS: "500",
          LOG_LEVEL: "silent",
        }),
      );
      try {
        await app.ready();
        const auth = await seed(testStore.store.db);
        const list = () =>
          withTimeout(
            app.inject({ method: "GET", url: "/v1/contacts?limit=5", headers: auth }),
            REQUEST_TIMEOUT_MS,
            "GET /v1/contacts during a partition",
          );
        assert.equal((await list()).statusCode, 200, "served before the partition");
        proxy.stall();
        // Pooled connections hang silently now: without a limit, a request would wait for TCP to give up (minutes).
        const during = await Promise.all([list(), list(), list()]);
        for (const res of during) {
          assert.equal(res.statusCode, 503, res.body);
          assert.equal(res.json().error.code, "service_unavailable");
        }
        proxy.restore();
        const recoveryMs = await waitFor("recovery after the partition", 300_000, async () => {
          return (await list()).statusCode === 200;
        });
        console.log(
          `# partition [postgres]: 3 × 503 while stalled; served again ${recoveryMs} ms after it healed`,
        );
      } finally {
        await app.close();
        await proxy.close();
        await testStore.drop();
      }
    });
  });
}

if (hasRedis()) {
  describe("Redis outage", () => {
    test("the app keeps serving reads and writes while Redis is cut", async () => {
      const testStore = await createTestStore("sqlite");
      const target = new URL(REDIS_URL);
      const proxy = await TcpProxy.start(Number(target.port || 6379), target.hostname);
      const app = await buildApp(
        loadConfig({ ...testStore.env, REDIS_URL: `redis://127.0.0.1:${proxy.port}`, LOG_LEVEL: "silent" }),
        { store: testStore.store },
      );
      try {
        await app.ready();
        const auth = await seed(testStore.store.db);
        const traffic = load(app, auth, 4);
        await sleep(500);
        const cutAt = Date.now();
        proxy.cut();
        await sleep(2000);
        const restoredAt = Date.now();
        proxy.restore();
        await sleep(1000);
        await traffic.stop();
        const during = traffic.samples.filter((s) => s.startedAt >= cutAt && s.startedAt < restoredAt);
        assert.ok(during.length > 0, "load ran during the outage");
        for (const s of traffic.samples) assert.ok(s.status < 300, `${s.url}: ${s.status} ${s.body}`);
        console.log(`# outage [redis]: ${during.length} requests served while Redis was cut, all 2xx`);
      } finally {
        await app.close();
        await proxy.close();
        await testStore.drop();
      }
    });
  });
}
