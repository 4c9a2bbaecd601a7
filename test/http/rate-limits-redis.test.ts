import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { Writable } from "node:stream";
import { describe, test } from "node:test";
import { Redis } from "ioredis";
import { buildApp } from "../../src/app.ts";
import { START_DEADLINE_MS, spawnChild } from "../helpers/children.ts";
import { hasRedis, REDIS_URL, storeKinds } from "../helpers/env.ts";
import { createHarness } from "../helpers/harness.ts";
import { freePort, redisKeys, redisPrefix } from "../helpers/processes.ts";

/** Captures pino's JSON lines. */
function logCapture() {
  const lines: Array<{ level: number; msg: string }> = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n")) if (line.trim()) lines.push(JSON.parse(line));
      done();
    },
  });
  return { stream, lines, messages: () => lines.map((l) => l.msg) };
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = START_DEADLINE_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A private redis-server on `port` (the shared one is never stopped). */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawnChild(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: "ignore" },
  );
  await waitFor("redis-server to answer", async () => {
    const client = new Redis(`redis://127.0.0.1:${port}`, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    client.on("error", () => {});
    try {
      await client.connect();
      return (await client.ping()) === "PONG";
    } catch {
      return false;
    } finally {
      client.disconnect();
    }
  });
  return child;
}

async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  await exited;
}

const kind = storeKinds()[0] ?? "sqlite";

if (hasRedis()) {
  describe(`rate limits with Redis [${kind}]`, () => {
    test("two apps sharing Redis share the buckets", async () => {
      const redis = redisPrefix();
      const h = await createHarness(kind, { REDIS_URL, REDIS_KEY_PREFIX: redis.prefix });
      const second = await buildApp(h.config, { store: h.store });
      try {
        const tenant = await h.tenant("Shared", { rateLimits: { read_per_minute: 4 } });
        const seen: string[] = [];
        for (const app of [h.app, second, h.app, second, second]) {
          const res = await app.inject({ method: "GET", url: "/v1/me", headers: tenant.auth });
          seen.push(`${res.statusCode}:${res.headers["x-ratelimit-remaining"]}`);
        }
        assert.deepEqual(seen, ["200:3", "200:2", "200:1", "200:0", "429:0"]);
        const keys = await redisKeys(redis.prefix);
        assert.deepEqual(keys, [`${redis.prefix}rl:${tenant.orgId}:read`]);
      } finally {
        await second.close();
        await h.close();
        await redis.cleanup();
      }
    });
  });
}

describe(`rate limits when Redis is unreachable [${kind}]`, () => {
  test("requests are still served (per-process buckets) and a warning is logged", async () => {
    const closedPort = await freePort();
    const logs = logCapture();
    const h = await createHarness(
      kind,
      { REDIS_URL: `redis://127.0.0.1:${closedPort}`, LOG_LEVEL: "info" },
      { logStream: logs.stream },
    );
    try {
      const tenant = await h.tenant("Fail Open", { rateLimits: { write_per_minute: 2 } });
      await h.account(tenant.orgId);
      const me = await h.inject({ method: "GET", url: "/v1/me", headers: tenant.auth });
      assert.equal(me.statusCode, 200, me.body);
      assert.equal(me.headers["x-ratelimit-limit"], "600");
      const statuses: number[] = [];
      for (const phone of ["+628133000001", "+628133000002", "+628133000003"]) {
        const res = await h.inject({
          method: "POST",
          url: "/v1/contacts",
          headers: tenant.auth,
          payload: { phone_number: phone },
        });
        statuses.push(res.statusCode);
      }
      assert.deepEqual(statuses, [201, 201, 429], "the per-process bucket still limits");
      const warnings = logs.lines.filter((l) => l.level === 40 && /Redis is unreachable/.test(l.msg));
      assert.equal(warnings.length, 1, `one warning per outage: ${logs.messages().join(" | ")}`);
    } finally {
      await h.close();
    }
  });

  test("Redis going away and coming back: served throughout, shared again afterwards", async () => {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    let redisProcess = await startRedis(port);
    const logs = logCapture();
    const redis = redisPrefix();
    const h = await createHarness(
      kind,
      { REDIS_URL: url, REDIS_KEY_PREFIX: redis.prefix, LOG_LEVEL: "info" },
      { logStream: logs.stream },
    );
    try {
      const tenant = await h.tenant("Recovers");
      const me = () => h.inject({ method: "GET", url: "/v1/me", headers: tenant.auth });
      assert.equal((await me()).statusCode, 200);
      assert.equal((await redisKeys(redis.prefix, url)).length, 1, "the bucket lives in Redis");

      await stopRedis(redisProcess);
      for (let i = 0; i < 3; i++) {
        const res = await me();
        assert.equal(res.statusCode, 200, res.body);
        assert.equal(res.headers["x-ratelimit-limit"], "600");
      }
      assert.ok(
        logs.messages().some((m) => /Redis is unreachable/.test(m)),
        logs.messages().join(" | "),
      );

      redisProcess = await startRedis(port);
      // No restart of the app: ioredis reconnects by itself and the limiter goes back to Redis.
      await waitFor("the limiter to use Redis again", async () => {
        const res = await me();
        assert.equal(res.statusCode, 200, res.body);
        return (await redisKeys(redis.prefix, url)).length === 1;
      });
      assert.ok(
        logs.messages().some((m) => /Redis is reachable again/.test(m)),
        logs.messages().join(" | "),
      );
    } finally {
      await h.close();
      await redis.cleanup(url).catch(() => {});
      await stopRedis(redisProcess);
    }
  });

  test("a Redis that stops answering (CLIENT PAUSE): still served, one warning, back on Redis by itself", async () => {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    const redisProcess = await startRedis(port);
    const logs = logCapture();
    const redis = redisPrefix();
    const h = await createHarness(
      kind,
      { REDIS_URL: url, REDIS_KEY_PREFIX: redis.prefix, LOG_LEVEL: "info" },
      { logStream: logs.stream },
    );
    const control = new Redis(url, { maxRetriesPerRequest: 0 });
    control.on("error", () => {});
    try {
      const tenant = await h.tenant("Paused");
      const me = () => h.inject({ method: "GET", url: "/v1/me", headers: tenant.auth });
      assert.equal((await me()).headers["x-ratelimit-remaining"], "599");
      await control.call("CLIENT", "PAUSE", "3000", "ALL");
      const during = await Promise.all([me(), me(), me()]);
      assert.deepEqual(
        during.map((r) => r.statusCode),
        [200, 200, 200],
      );
      for (const r of during) assert.equal(r.headers["x-ratelimit-limit"], "600");
      assert.equal(
        logs.messages().filter((m) => /Redis is unreachable/.test(m)).length,
        1,
        logs.messages().join(" | "),
      );
      await waitFor("the limiter to use Redis again", async () => {
        await me();
        return logs.messages().some((m) => /Redis is reachable again/.test(m));
      });
    } finally {
      control.disconnect();
      await h.close();
      await stopRedis(redisProcess);
    }
  });
});
