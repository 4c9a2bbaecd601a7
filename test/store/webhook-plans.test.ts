/**
 * The webhook worker's claim on PostgreSQL without statistics. A new
 * installation, or a backlog grown since autovacuum last analysed
 * webhook_deliveries, has none: the planner then drove the claim from the
 * subscription through the chain index and read and sorted every pending
 * delivery of it (64 ms per claim at a backlog of 20,000; the worker
 * delivered 809 events/s instead of ~2,700). The claim must read the due
 * index in order and stop after `limit` chain heads, whatever the statistics.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type CompiledQuery, Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { newDelivery } from "../../src/domain/events.ts";
import { createOrganization } from "../../src/domain/organizations.ts";
import { newId } from "../../src/ids.ts";
import {
  claimDeliveries,
  type DeliveryRow,
  insertDeliveries,
  insertSubscription,
} from "../../src/store/repositories/webhooks.ts";
import type { Database } from "../../src/store/schema.ts";
import { storeKinds } from "../helpers/env.ts";
import { createTestStore, type TestStore } from "../helpers/harness.ts";
import { subscriptionRow } from "../helpers/subscriptions.ts";

if (storeKinds().includes("postgres")) {
  describe("webhook claim plan without statistics [postgres]", () => {
    let ts: TestStore;
    const KEYS = 100;
    const PER_KEY = 30;
    const at = Date.now();

    before(async () => {
      ts = await createTestStore("postgres", { migrated: true });
      await ts.store.migrate();
      const orgId = (await createOrganization(ts.store.db, { name: "Claim plans" })).id;
      const subscriptionId = newId("whs");
      await insertSubscription(
        ts.store.db,
        subscriptionRow(orgId, {
          id: subscriptionId,
          url: "https://hooks.example.com/in",
          events: ["contact.updated"],
          at,
        }),
      );
      // 3,000 pending deliveries: 100 contacts with a chain of 30 each, queued
      // as batch upserts queue them (each batch touches every contact once).
      const rows: DeliveryRow[] = [];
      for (let n = 0; n < PER_KEY; n++) {
        for (let k = 0; k < KEYS; k++) {
          const seq = n * KEYS + k + 1;
          const event = { id: newId("evt"), organization_id: orgId, seq, type: "contact.updated" };
          rows.push(newDelivery(event, subscriptionId, `contact_${k}`, at - 60_000 + seq));
        }
      }
      await ts.store.transaction((tx) => insertDeliveries(tx, rows));
      // No ANALYZE: what a fresh table looks like to the planner.
      const { rows: stats } = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM pg_stats WHERE tablename = 'webhook_deliveries'`.execute(ts.store.db);
      assert.equal(stats[0]!.n, 0, "the table has no statistics yet");
    });
    after(() => ts.drop());

    test("the claim reads the due index in order, sorts nothing, and leaves sorting on for the rest of the transaction", async () => {
      const captured: CompiledQuery[] = [];
      const pool = new pg.Pool({ connectionString: ts.env.DATABASE_URL!, max: 1 });
      const logged = new Kysely<Database>({
        dialect: new PostgresDialect({ pool }),
        log: (event) => {
          if (event.level === "query") captured.push(event.query);
        },
      });
      try {
        const { ids, sortAfter } = await logged.transaction().execute(async (tx) => {
          const ids = await claimDeliveries(tx, "owner_test", at, at + 60_000, 64);
          const { rows } = await sql<{ enable_sort: string }>`SHOW enable_sort`.execute(tx);
          return { ids, sortAfter: rows[0]!.enable_sort };
        });
        // Only the head of each of the 100 chains is due; 64 of them, the oldest first.
        assert.equal(ids.length, 64);
        assert.equal(sortAfter, "on");

        const claim = captured.find((q) => /SKIP LOCKED/.test(q.sql));
        assert.ok(claim, "the claim statement was run");
        const plan = await logged.transaction().execute(async (tx) => {
          // The statement as claimDeliveries runs it: after its SET LOCAL.
          for (const q of captured.slice(0, captured.indexOf(claim))) {
            if (/^SET LOCAL/.test(q.sql)) await tx.executeQuery(q);
          }
          const { rows } = await tx.executeQuery<{ "QUERY PLAN": string }>({
            ...claim,
            sql: `EXPLAIN ${claim.sql}`,
          });
          return rows.map((r) => r["QUERY PLAN"]).join("\n");
        });
        assert.match(plan, /Index Scan using webhook_deliveries_due on webhook_deliveries d/, plan);
        assert.doesNotMatch(plan, /\bSort\b/, plan);
      } finally {
        await logged.destroy();
      }
    });
  });
}
