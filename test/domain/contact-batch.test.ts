import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createAccount } from "../../src/domain/accounts.ts";
import { type BatchItem, writeContactBatch } from "../../src/domain/contact-batch.ts";
import type { Scope } from "../../src/domain/contacts.ts";
import { createOrganization } from "../../src/domain/organizations.ts";
import type { AccountRow } from "../../src/store/repositories/accounts.ts";
import { storeKinds } from "../helpers/env.ts";
import { createTestStore, type TestStore } from "../helpers/harness.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Only PostgreSQL runs transactions concurrently (SQLite serialises them in-process).
for (const kind of storeKinds().filter((k) => k === "postgres")) {
  describe(`contact batch under concurrency [${kind}]`, () => {
    let ts: TestStore;
    let orgId: string;
    let account: AccountRow;
    before(async () => {
      ts = await createTestStore(kind, { migrated: true });
      await ts.store.migrate();
      orgId = (await createOrganization(ts.store.db, { name: "Race Co" })).id;
      account = await createAccount(ts.store.db, orgId, {
        phone_number_id: `${800000000 + process.pid}`,
        phone_number: "+628111888000",
      });
    });
    after(async () => {
      await ts.drop();
    });

    test("an identity inserted by another transaction meanwhile is decided again, not duplicated or lost", async () => {
      const items = (name: string): BatchItem[] =>
        Array.from({ length: 20 }, (_, i) => ({
          input: { phone_number: `+62833${String(i).padStart(7, "0")}`, display_name: `${name} ${i}` },
        }));
      const scopeOf = (db: Scope["db"]): Scope => ({ db, organizationId: orgId });
      let firstWritten!: () => void;
      const written = new Promise<void>((resolve) => {
        firstWritten = resolve;
      });
      // T1 inserts the 20 contacts and holds its transaction open for a while.
      const t1 = ts.store.transaction(async (tx) => {
        const results = await writeContactBatch(scopeOf(tx), account, items("First"), {
          mode: "upsert",
          source: "api",
        });
        firstWritten();
        await sleep(400);
        return results;
      });
      await written;
      // T2 looks them up (not visible yet), inserts, waits on T1's rows, finds its inserts lost, and redoes them.
      const t2 = ts.store.transaction((tx) =>
        writeContactBatch(scopeOf(tx), account, items("Second"), { mode: "upsert", source: "api" }),
      );
      const [r1, r2] = await Promise.all([t1, t2]);
      assert.ok(r1.every((r) => r.status === "created"));
      assert.deepEqual(
        r2.map((r) => r.status),
        Array(20).fill("updated"),
      );
      assert.deepEqual(
        r2.map((r) => r.id),
        r1.map((r) => r.id),
        "the second batch merged into the contacts the first created",
      );
      const rows = await ts.store.db
        .selectFrom("contacts")
        .select(["display_name"])
        .where("account_id", "=", account.id)
        .orderBy("phone_number")
        .execute();
      assert.equal(rows.length, 20);
      assert.deepEqual(
        rows.map((r) => r.display_name),
        Array.from({ length: 20 }, (_, i) => `Second ${i}`),
      );
    });
  });
}
