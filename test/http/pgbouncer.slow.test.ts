import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "kysely";
import pg from "pg";
import { createOrganization } from "../../src/domain/organizations.ts";
import { createPostgresStore } from "../../src/store/store.ts";
import { hasRedis, REDIS_URL, storeKinds } from "../helpers/env.ts";
import { createTestStore, seedOrganization, type TestStore } from "../helpers/harness.ts";
import { hasPgBouncer, PGBOUNCER, type PgBouncer, startPgBouncer } from "../helpers/pgbouncer.ts";
import { redisPrefix, type ServerProcess, startServerProcess } from "../helpers/processes.ts";
import { twoServerTests } from "../helpers/two-servers.ts";

/**
 * PgBouncer in transaction pooling mode (the standard way to put many
 * processes on one PostgreSQL) between two real server processes and the
 * database: nothing may rely on session state (docs/deploying.md). The
 * bouncer has fewer server connections than the processes have clients, so
 * one client's consecutive transactions land on different server connections.
 */
if (process.env.CI === "true" && !hasPgBouncer()) {
  throw new Error(`CI=true requires PgBouncer at ${PGBOUNCER} (apt-get install pgbouncer)`);
}
if (storeKinds().includes("postgres") && hasRedis() && hasPgBouncer()) {
  describe("two server processes through PgBouncer (pool_mode=transaction)", () => {
    let store: TestStore;
    let bouncer: PgBouncer | undefined;
    let servers: ServerProcess[] = [];
    const redis = redisPrefix();

    before(async () => {
      store = await createTestStore("postgres");
      bouncer = await startPgBouncer(store.env.DATABASE_URL!, { poolSize: 3 });
      // Both processes migrate the empty database at once, through the bouncer.
      // PgBouncer 1.18 in transaction mode cannot carry named prepared statements (docs/deploying.md).
      const env = {
        DATABASE_URL: bouncer.url,
        DATABASE_PREPARED_STATEMENTS: "false",
        REDIS_URL,
        REDIS_KEY_PREFIX: redis.prefix,
      };
      const first = await Promise.all([startServerProcess(env), startServerProcess(env)]);
      servers = first;
      await createOrganization(store.store.db, { name: "Bootstrap guard" });
    });
    after(async () => {
      await Promise.all(servers.map((s) => s.stop()));
      await bouncer?.stop();
      await store.drop();
      await redis.cleanup();
    });

    test("two processes migrated one empty database at once through it, and no advisory lock is left", async () => {
      const applied = await store.store.db
        .selectFrom("phonebook_migrations" as never)
        .select(sql<string>`name`.as("name"))
        .execute();
      const names = applied.map((r) => (r as { name: string }).name);
      assert.equal(new Set(names).size, names.length, names.join(","));
      assert.ok(names.includes("0001_foundation"), names.join(","));
      const locks = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'`.execute(store.store.db);
      assert.equal(locks.rows[0]!.n, 0);
    });

    test("a third migration through it while the servers run finds nothing to do", async () => {
      const third = createPostgresStore(bouncer!.url);
      try {
        assert.deepEqual(await third.migrate(), { applied: [] });
      } finally {
        await third.close();
      }
    });

    test("transactions carry the statement limit (SET LOCAL), which the bouncer would drop as a startup parameter", async () => {
      const refused = new pg.Client({
        connectionString: bouncer!.url,
        statement_timeout: 1000,
      } as pg.ClientConfig);
      await assert.rejects(refused.connect(), /unsupported startup parameter/);
      await refused.end().catch(() => {});
      const through = createPostgresStore(bouncer!.url, { queryTimeoutMs: 1500 });
      try {
        const shown = await through.transaction((tx) =>
          sql<{ statement_timeout: string }>`SHOW statement_timeout`.execute(tx),
        );
        assert.equal(shown.rows[0]!.statement_timeout, "1500ms");
        await assert.rejects(
          through.transaction((tx) => sql`SELECT pg_sleep(5)`.execute(tx)),
          (error: Error & { code?: string }) => error.code === "57014",
        );
      } finally {
        await through.close();
      }
    });

    test("an import sent to one process is run and read back through the other", async () => {
      const tenant = await seedOrganization(store.store.db, {
        name: "Import Co",
        phoneNumberId: "300000000000001",
        phoneNumber: "+628111222444",
      });
      const rows = Array.from(
        { length: 1200 },
        (_, i) => `+6281300${String(i).padStart(5, "0")},Person ${i}`,
      );
      const res = await fetch(`${servers[0]!.url}/v1/imports?phone_number_id=300000000000001&mode=create`, {
        method: "POST",
        headers: { ...tenant.auth, "content-type": "text/csv" },
        body: `phone_number,name\n${rows.join("\n")}\n`,
      });
      const started = (await res.json()) as { data: { id: string } };
      assert.equal(res.status, 202, JSON.stringify(started));
      const deadline = Date.now() + 120_000;
      let body: { data: { status: string; created: number; failed_rows: number } };
      for (;;) {
        const poll = await fetch(`${servers[1]!.url}/v1/imports/${started.data.id}`, {
          headers: tenant.auth,
        });
        body = (await poll.json()) as typeof body;
        if (body.data.status === "completed" || body.data.status === "failed") break;
        assert.ok(Date.now() < deadline, `import still ${body.data.status} after 120 s`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.equal(body.data.status, "completed", JSON.stringify(body));
      assert.equal(body.data.created, 1200);
      assert.equal(body.data.failed_rows, 0);
    });

    twoServerTests(() => ({ store, servers, redisPrefix: redis.prefix }));
  });
}
