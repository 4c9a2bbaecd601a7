/**
 * The PostgreSQL pool (DATABASE_POOL_SIZE, DATABASE_POOL_TIMEOUT_MS): a
 * request that cannot get a connection within the wait answers 503
 * `service_unavailable` in the envelope (load shed, never a hang or a 500),
 * and the next one is served once a connection is free again.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { sql } from "kysely";
import { buildApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { createPostgresStore, type Store } from "../../src/store/store.ts";
import { assertError } from "../helpers/assertions.ts";
import { storeKinds } from "../helpers/env.ts";
import { createTestStore, seedOrganization, type TestStore } from "../helpers/harness.ts";

test("DATABASE_POOL_SIZE and DATABASE_POOL_TIMEOUT_MS: defaults, values, a bad value names the variable", () => {
  const defaults = loadConfig({});
  assert.equal(defaults.databasePoolSize, 10);
  assert.equal(defaults.databasePoolTimeoutMs, 5000);
  const set = loadConfig({ DATABASE_POOL_SIZE: "25", DATABASE_POOL_TIMEOUT_MS: "750" });
  assert.equal(set.databasePoolSize, 25);
  assert.equal(set.databasePoolTimeoutMs, 750);
  assert.throws(() => loadConfig({ DATABASE_POOL_SIZE: "0" }), /DATABASE_POOL_SIZE/);
  assert.throws(() => loadConfig({ DATABASE_POOL_SIZE: "ten" }), /DATABASE_POOL_SIZE/);
  assert.throws(() => loadConfig({ DATABASE_POOL_TIMEOUT_MS: "50" }), /DATABASE_POOL_TIMEOUT_MS/);
});

if (storeKinds().includes("postgres")) {
  describe("pool of one connection, 300 ms wait [postgres]", () => {
    let ts: TestStore;
    let store: Store;
    let app: FastifyInstance;
    let auth: { authorization: string };
    before(async () => {
      ts = await createTestStore("postgres");
      await ts.store.migrate();
      ({ auth } = await seedOrganization(ts.store.db, {
        name: "Pooled",
        phoneNumberId: "100000000777001",
        phoneNumber: "+6281100777001",
      }));
      store = createPostgresStore(ts.env.DATABASE_URL!, { poolSize: 1, poolTimeoutMs: 300 });
      app = await buildApp(loadConfig({ ...ts.env, LOG_LEVEL: "silent" }), {
        store,
        jobs: false,
        webhooks: false,
      });
      await app.ready();
    });
    after(async () => {
      await app?.close();
      await store?.close();
      await ts?.drop();
    });

    test("a request finding every connection busy past the wait gets 503; once free, 200", async () => {
      assert.equal((await app.inject({ method: "GET", url: "/v1/contacts", headers: auth })).statusCode, 200);
      let release!: () => void;
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      let holding!: () => void;
      const held = new Promise<void>((resolve) => {
        holding = resolve;
      });
      // The pool's only connection is held by an open transaction until released.
      const transaction = store.db.transaction().execute(async (tx) => {
        await sql`select 1`.execute(tx);
        holding();
        await released;
      });
      await held;
      try {
        const res = await app.inject({ method: "GET", url: "/v1/contacts", headers: auth });
        assertError(res, 503, "service_unavailable");
      } finally {
        release();
        await transaction;
      }
      const again = await app.inject({ method: "GET", url: "/v1/contacts", headers: auth });
      assert.equal(again.statusCode, 200, again.body);
    });
  });
}
