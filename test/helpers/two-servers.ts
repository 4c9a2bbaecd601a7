import assert from "node:assert/strict";
import { test } from "node:test";
import { createAccount } from "../../src/domain/accounts.ts";
import { createApiKey, createOrganization, updateOrganization } from "../../src/domain/organizations.ts";
import type { TestStore } from "./harness.ts";
import { redisKeys, type ServerProcess } from "./processes.ts";

export interface TwoServers {
  /** The database the servers use, opened directly (to seed and to check). */
  store: TestStore;
  servers: ServerProcess[];
  redisPrefix: string;
}

/**
 * The tests of two real `phonebook serve` processes on one PostgreSQL and one
 * Redis: idempotency and rate limits hold for the organisation, not per
 * process. Registered inside a describe whose before() fills `setup()`; run
 * with the servers connected straight to PostgreSQL (multi-process.test.ts)
 * and through PgBouncer in transaction mode (pgbouncer.slow.test.ts).
 */
export function twoServerTests(setup: () => TwoServers): void {
  const db = () => setup().store.store.db;
  async function tenant(name: string, limits?: { read_per_minute?: number; write_per_minute?: number }) {
    const org = await createOrganization(db(), { name });
    if (limits) await updateOrganization(db(), org.id, { rate_limits: limits });
    const { key } = await createApiKey(db(), org.id, {});
    await createAccount(db(), org.id, {
      phone_number_id: `${200000000000000 + Math.floor(Math.random() * 1e9)}`,
      phone_number: "+628111222333",
    });
    return { orgId: org.id, headers: { authorization: `Bearer ${key}` } };
  }

  test("50 concurrent POSTs with one key, spread over both processes, create exactly one contact", async () => {
    const { orgId, headers } = await tenant("Storm Co");
    const body = JSON.stringify({ phone_number: "+628122000001", name: "Storm" });
    const responses = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const res = await fetch(`${setup().servers[i % 2]!.url}/v1/contacts`, {
          method: "POST",
          headers: { ...headers, "content-type": "application/json", "idempotency-key": "two-procs" },
          body,
        });
        return {
          status: res.status,
          replayed: res.headers.get("idempotent-replayed"),
          json: await res.json(),
        };
      }),
    );
    const summary = responses.map((r) => `${r.status} ${r.replayed} ${JSON.stringify(r.json)}`).join("\n");
    const fresh = responses.filter((r) => r.status === 201 && r.replayed === "false");
    assert.equal(fresh.length, 1, summary);
    const id = fresh[0]!.json.data.id;
    for (const r of responses) {
      if (r.status === 409) assert.equal(r.json.error.code, "idempotency_in_progress", summary);
      else {
        assert.equal(r.status, 201, summary);
        assert.equal(r.json.data.id, id, summary);
      }
    }
    const contacts = await setup()
      .store.store.db.selectFrom("contacts")
      .select("id")
      .where("organization_id", "=", orgId)
      .execute();
    assert.deepEqual(
      contacts.map((c) => c.id),
      [id],
    );
    const keys = await setup()
      .store.store.db.selectFrom("idempotency_keys")
      .select("idempotency_key")
      .where("organization_id", "=", orgId)
      .execute();
    assert.equal(keys.length, 1);
  });

  test("rate-limit buckets are shared: the second process sees the first one's consumption", async () => {
    const { headers } = await tenant("Shared Co", { read_per_minute: 6, write_per_minute: 3 });
    const get = async (server: ServerProcess) => {
      const res = await fetch(`${server.url}/v1/me`, { headers });
      await res.arrayBuffer();
      return res;
    };
    const [a, b] = setup().servers as [ServerProcess, ServerProcess];
    const remaining: string[] = [];
    for (const server of [a, a, a, b, b, b]) {
      const res = await get(server);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("x-ratelimit-limit"), "6");
      remaining.push(res.headers.get("x-ratelimit-remaining") ?? "");
    }
    // 6 per minute refills one token every 10 s: far slower than these requests.
    assert.deepEqual(remaining, ["5", "4", "3", "2", "1", "0"]);
    for (const server of [a, b]) {
      const limited = await fetch(`${server.url}/v1/me`, { headers });
      const body = (await limited.json()) as { error: { code: string } };
      assert.equal(limited.status, 429);
      assert.equal(body.error.code, "rate_limit_exceeded");
      assert.ok(Number(limited.headers.get("retry-after")) >= 1);
      assert.equal(limited.headers.get("x-ratelimit-remaining"), "0");
    }
    // Writes are a separate shared bucket.
    const statuses: number[] = [];
    for (const server of [b, a, b, a]) {
      const res = await fetch(`${server.url}/v1/contacts`, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body: JSON.stringify({ phone_number: `+6281230000${statuses.length + 10}` }),
      });
      await res.arrayBuffer();
      statuses.push(res.status);
    }
    assert.deepEqual(statuses, [201, 201, 201, 429]);
    const keys = await redisKeys(setup().redisPrefix);
    assert.ok(
      keys.some((k) => k.endsWith(":read")) && keys.some((k) => k.endsWith(":write")),
      keys.join(","),
    );
  });
}
