import { after, before, describe } from "node:test";
import { createOrganization } from "../../src/domain/organizations.ts";
import { hasRedis, REDIS_URL, storeKinds } from "../helpers/env.ts";
import { createTestStore, type TestStore } from "../helpers/harness.ts";
import { redisPrefix, type ServerProcess, startServerProcess } from "../helpers/processes.ts";
import { twoServerTests } from "../helpers/two-servers.ts";

/**
 * Two real `phonebook serve` processes on one PostgreSQL database and one
 * Redis (random key prefix): idempotency and rate limits hold for the
 * organisation, not per process (test/helpers/two-servers.ts; the same
 * tests run through PgBouncer in pgbouncer.slow.test.ts).
 */
if (storeKinds().includes("postgres") && hasRedis()) {
  describe("two server processes on one PostgreSQL and one Redis", () => {
    let store: TestStore;
    let servers: ServerProcess[] = [];
    const redis = redisPrefix();

    before(async () => {
      store = await createTestStore("postgres");
      await store.store.migrate();
      // An organisation exists, so neither process bootstraps a first one.
      await createOrganization(store.store.db, { name: "Bootstrap guard" });
      const env = { ...store.env, REDIS_URL, REDIS_KEY_PREFIX: redis.prefix };
      servers = await Promise.all([startServerProcess(env), startServerProcess(env)]);
    });
    after(async () => {
      await Promise.all(servers.map((s) => s.stop()));
      await store.drop();
      await redis.cleanup();
    });

    twoServerTests(() => ({ store, servers, redisPrefix: redis.prefix }));
  });
}
