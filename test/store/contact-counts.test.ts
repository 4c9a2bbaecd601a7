import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Migrator } from "kysely";
import { signMetaPayload } from "../../src/http/webhooks/meta-delivery.ts";
import { migrationProvider } from "../../src/store/migrations/index.ts";
import { maintainedContactCount } from "../../src/store/repositories/contacts.ts";
import { storeKinds } from "../helpers/env.ts";
import { createHarness, createTestStore, type Harness, type Json, type Tenant } from "../helpers/harness.ts";
import { waitForImport } from "../helpers/imports.ts";
import { messagesDelivery } from "../helpers/meta-delivery.ts";

const SECRET = "test-app-secret-0123456789";

/**
 * Maintained counts (migration 0006) equal count(*) after writes on every
 * path, and after concurrent writes from many connections.
 */
for (const kind of storeKinds()) {
  describe(`maintained contact counts [${kind}]`, () => {
    let h: Harness;
    let t: Tenant;
    let a: { id: string; phoneNumberId: string };
    let b: { id: string; phoneNumberId: string };
    before(async () => {
      h = await createHarness(kind, { META_APP_SECRET: SECRET, META_VERIFY_TOKEN: "verify-token-xyz" });
      t = await h.tenant("Counted", { rateLimits: { write_per_minute: 100_000, read_per_minute: 100_000 } });
      a = await h.account(t.orgId);
      b = await h.account(t.orgId);
    });
    after(async () => h?.close());

    /** The truth, counted row by row. */
    async function truth(accountId?: string): Promise<number> {
      let q = h.store.db
        .selectFrom("contacts")
        .select((eb) => eb.fn.countAll<number | string>().as("n"))
        .where("organization_id", "=", t.orgId);
      if (accountId) q = q.where("account_id", "=", accountId);
      return Number((await q.executeTakeFirstOrThrow()).n);
    }

    async function assertExact(note: string) {
      for (const accountId of [undefined, a.id, b.id]) {
        const maintained = await maintainedContactCount(h.store.db, t.orgId, accountId);
        assert.equal(maintained, await truth(accountId), `${note} (${accountId ?? "organisation"})`);
      }
      const res = await h.inject({
        method: "GET",
        url: "/platform/v1/whatsapp/contacts?page=1",
        headers: t.auth,
      });
      assert.equal(res.json().meta.total_count, await truth(), `${note}: the platform's total_count`);
    }

    test("every writing path keeps the counts exact", async () => {
      await assertExact("empty");
      const one = await h.inject({
        method: "POST",
        url: `/v1/${a.phoneNumberId}/contacts`,
        headers: t.auth,
        payload: { phone_number: "+6281500000001" },
      });
      assert.equal(one.statusCode, 201);
      await h.inject({
        method: "POST",
        url: `/v1/${a.phoneNumberId}/contacts`,
        headers: t.auth,
        payload: { phone_number: "+6281500000001" },
      }); // 409: nothing inserted
      await assertExact("native create and a refused duplicate");
      await h.inject({
        method: "POST",
        url: "/platform/v1/whatsapp/contacts",
        headers: t.auth,
        payload: { contact: { wa_id: "6281500000002", phone_number_id: b.phoneNumberId } },
      });
      await assertExact("platform create");
      const batch = await h.inject({
        method: "POST",
        url: `/v1/${b.phoneNumberId}/contacts/batch`,
        headers: t.auth,
        payload: {
          mode: "upsert",
          contacts: Array.from({ length: 30 }, (_, i) => ({
            phone_number: `+62815100000${String(i).padStart(2, "0")}`,
          })),
        },
      });
      assert.equal(batch.json().summary.created, 30, batch.body);
      await assertExact("batch");
      const file = `phone_number\n${Array.from({ length: 25 }, (_, i) => `+62815200000${String(i).padStart(2, "0")}`).join("\n")}\n`;
      const imp = await h.inject({
        method: "POST",
        url: `/v1/imports?phone_number_id=${a.phoneNumberId}`,
        headers: { ...t.auth, "content-type": "text/csv" },
        payload: file,
      });
      assert.equal((await waitForImport(h, imp.json().data.id, t.auth)).created, 25);
      await assertExact("import");
      for (const person of [
        { wa_id: "6281530000001", name: "In" },
        { user_id: "US.99887766", name: "Bsuid" },
      ]) {
        const body = messagesDelivery(a.phoneNumberId, person);
        const res = await h.inject({
          method: "POST",
          url: "/webhooks/whatsapp",
          headers: {
            "content-type": "application/json",
            "x-hub-signature-256": signMetaPayload(SECRET, body),
          },
          payload: body,
        });
        assert.equal(res.statusCode, 200, res.body);
      }
      await assertExact("inbound Meta webhook");
      await h.inject({ method: "DELETE", url: `/v1/contacts/${one.json().data.id}`, headers: t.auth });
      await h.inject({
        method: "DELETE",
        url: "/platform/v1/whatsapp/contacts/6281500000002",
        headers: t.auth,
      });
      await assertExact("deletes on both surfaces");
    });

    test("concurrent creates and deletes on many connections stay exact", async () => {
      // Every request ends before a failure is reported (no request left running
      // into the next test). The harness's pool waits for a connection as long as
      // it takes, so a loaded machine slows these down but never refuses them.
      const settled = async (work: Array<Promise<unknown>>) => {
        const failed = (await Promise.allSettled(work)).find((r) => r.status === "rejected");
        if (failed) throw (failed as PromiseRejectedResult).reason;
      };
      const created: string[] = [];
      await settled(
        Array.from({ length: 60 }, async (_, i) => {
          const account = i % 2 === 0 ? a : b;
          const res = await h.inject({
            method: "POST",
            url: `/v1/${account.phoneNumberId}/contacts/batch`,
            headers: t.auth,
            payload: {
              mode: "create",
              contacts: Array.from({ length: 5 }, (_, j) => ({
                phone_number: `+628160${String(i * 10 + j).padStart(6, "0")}`,
              })),
            },
          });
          assert.equal(res.statusCode, 200, res.body);
          for (const r of res.json().data as Json[]) if (r.id) created.push(r.id);
        }),
      );
      assert.equal(created.length, 300);
      await assertExact("after 60 concurrent batches");
      await settled(
        created.slice(0, 150).map(async (id, i) => {
          const res =
            i % 3 === 0
              ? await h.inject({ method: "DELETE", url: `/v1/contacts/${id}`, headers: t.auth })
              : await h.inject({
                  method: "POST",
                  url: `/v1/${a.phoneNumberId}/contacts`,
                  headers: t.auth,
                  payload: { phone_number: `+628170${String(i).padStart(6, "0")}` },
                });
          assert.ok(res.statusCode === 200 || res.statusCode === 201, res.body);
        }),
      );
      await assertExact("after concurrent deletes and creates");
    });

    test("an account's deletion takes its counts with it", async () => {
      await h.store.db.deleteFrom("accounts").where("id", "=", b.id).execute();
      assert.equal(await maintainedContactCount(h.store.db, t.orgId, b.id), 0);
      assert.equal(await maintainedContactCount(h.store.db, t.orgId, undefined), await truth());
    });
  });

  test(`migration 0006 counts the contacts that exist before it [${kind}]`, async () => {
    const testStore = await createTestStore(kind);
    try {
      const migrator = new Migrator({
        db: testStore.store.db,
        provider: migrationProvider(kind),
        migrationTableName: "phonebook_migrations",
        migrationLockTableName: "phonebook_migrations_lock",
      });
      const before = await migrator.migrateTo("0005_inbound_receipts");
      assert.equal(before.error, undefined);
      const db = testStore.store.db;
      const at = Date.now();
      await db
        .insertInto("organizations")
        .values({
          id: "org_01J00000000000000000000000",
          name: "Old",
          read_per_minute: null,
          write_per_minute: null,
          created_at: at,
          updated_at: at,
        })
        .execute();
      await db
        .insertInto("accounts")
        .values({
          id: "wba_01J00000000000000000000000",
          organization_id: "org_01J00000000000000000000000",
          phone_number_id: "555000111222",
          phone_number: "+6281100000000",
          name: null,
          status: "connected",
          created_at: at,
          updated_at: at,
        })
        .execute();
      await db
        .insertInto("contacts")
        .values(
          Array.from({ length: 7 }, (_, i) => ({
            id: `ctc_01J0000000000000000000000${i}`,
            organization_id: "org_01J00000000000000000000000",
            account_id: "wba_01J00000000000000000000000",
            phone_number: `+62811000000${i}`,
            business_scoped_user_id: null,
            parent_business_scoped_user_id: null,
            username: null,
            profile_name: null,
            display_name: null,
            email: null,
            metadata: "{}",
            source: "api" as const,
            marketing_opt_out: 0,
            marketing_opt_out_at: null,
            search_text: "",
            customer_id: null,
            created_at: at,
            updated_at: at,
          })),
        )
        .execute();
      const latest = await migrator.migrateToLatest();
      assert.equal(latest.error, undefined);
      assert.equal(await maintainedContactCount(db, "org_01J00000000000000000000000", undefined), 7);
    } finally {
      await testStore.drop();
    }
  });
}
