import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { buildApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { createAccount } from "../../src/domain/accounts.ts";
import { createImport, LeaseLost, storedFile } from "../../src/domain/imports.ts";
import { createOrganization } from "../../src/domain/organizations.ts";
import { newId } from "../../src/ids.ts";
import {
  commitImportBatch,
  type ImportFormat,
  type ImportRecord,
  readRecords,
  receiveUpload,
} from "../../src/jobs/import-records.ts";
import { ImportRunner } from "../../src/jobs/import-runner.ts";
import type { AccountRow } from "../../src/store/repositories/accounts.ts";
import { claimImport, findImport } from "../../src/store/repositories/imports.ts";
import { storeKinds } from "../helpers/env.ts";
import { createTestStore, type TestStore } from "../helpers/harness.ts";

/**
 * 2,500 rows: 1,980 distinct valid phones (created), 495 later rows repeating
 * an earlier phone with a new email (updated: duplicates inside one file merge
 * like upsert, also across batches), 25 impossible phones (failed).
 */
function nastyFile(): string {
  const lines = ["phone_number,name,email"];
  for (let i = 0; i < 2500; i++) {
    const j = i % 2000;
    const phone = i % 100 === 99 ? "12" : `+62827${String(j).padStart(7, "0")}`;
    const email = i >= 2000 ? `second${j}@example.com` : `first${j}@example.com`;
    lines.push(`${phone},"Person, ${j}",${email}`);
  }
  return `${lines.join("\r\n")}\r\n`;
}
const EXPECTED = {
  total_rows: 2500,
  processed_rows: 2500,
  created: 1980,
  updated: 495,
  unchanged: 0,
  failed_rows: 25,
};

function countsOf(row: Record<string, unknown>) {
  return {
    total_rows: row.total_rows,
    processed_rows: row.processed_rows,
    created: row.created,
    updated: row.updated,
    unchanged: row.unchanged,
    failed_rows: row.failed_rows,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const kind of storeKinds()) {
  describe(`import runner [${kind}]`, () => {
    let ts: TestStore;
    let accountNo = 0;
    before(async () => {
      ts = await createTestStore(kind, { migrated: true });
      await ts.store.migrate();
    });
    after(async () => {
      await ts.drop();
    });

    /** A runner "dies": its lease is made to have run out, instead of waiting for the clock (no timing). */
    const expireLease = async (importId: string) => {
      await ts.store.db
        .updateTable("imports")
        .set({ lease_until: Date.now() - 1 })
        .where("id", "=", importId)
        .execute();
    };

    /**
     * An account of an organisation of its own: the tests import the same
     * phones, and in one organisation each import would also pair every row
     * with the earlier imports' contacts (duplicate detection), making every
     * later test slower without testing anything more.
     */
    const newAccount = async (): Promise<AccountRow> => {
      const org = await createOrganization(ts.store.db, { name: `Runner Co ${accountNo + 1}` });
      return createAccount(ts.store.db, org.id, {
        phone_number_id: `${900000000 + process.pid * 10 + ++accountNo}`,
        phone_number: `+6281300000${String(accountNo).padStart(2, "0")}`,
      });
    };
    const queue = async (account: AccountRow, text: string, format: ImportFormat = "csv") => {
      const upload = await receiveUpload(
        ts.store.db,
        newId("imp"),
        Readable.from([Buffer.from(text)]),
        format,
      );
      return ts.store.transaction((tx) =>
        createImport(tx, account.organization_id, account, upload, { format, mode: "create" }),
      );
    };
    const contactsOf = async (account: AccountRow) =>
      Number(
        (
          await ts.store.db
            .selectFrom("contacts")
            .select((eb) => eb.fn.countAll<number>().as("n"))
            .where("account_id", "=", account.id)
            .executeTakeFirstOrThrow()
        ).n,
      );

    test("an uninterrupted run gives the exact counts", async () => {
      const account = await newAccount();
      const imp = await queue(account, nastyFile());
      const runner = new ImportRunner(ts.store, { batchSize: 300 });
      assert.equal(await runner.runOnce({ importId: imp.id }), "finished");
      const done = (await findImport(ts.store.db, imp.id))!;
      assert.equal(done.status, "completed");
      assert.deepEqual(countsOf(done), EXPECTED);
      assert.equal(await contactsOf(account), EXPECTED.created);
      const chunks = await ts.store.db
        .selectFrom("import_chunks")
        .selectAll()
        .where("upload_id", "=", imp.id)
        .execute();
      assert.equal(chunks.length, 0, "the file is removed once the import ends");
    });

    test("a crash between batches and a crash inside a batch: the import resumes and never double-counts", async () => {
      const account = await newAccount();
      const imp = await queue(account, nastyFile());
      const leaseMs = 10 * 60_000; // never lapses by itself during the test: expiries are explicit

      // Runner A commits 3 batches, then dies holding its lease.
      const a = new ImportRunner(ts.store, { batchSize: 200, leaseMs });
      assert.equal(await a.runOnce({ importId: imp.id, maxBatches: 3 }), "paused");
      const afterA = (await findImport(ts.store.db, imp.id))!;
      assert.equal(afterA.status, "running");
      assert.equal(afterA.processed_rows, 600);
      assert.equal(afterA.created + afterA.updated + afterA.unchanged + afterA.failed_rows, 600);
      const b = new ImportRunner(ts.store, { batchSize: 200, leaseMs });
      assert.equal(await b.runOnce({ importId: imp.id }), "idle", "A's lease still holds the import");

      // Runner B takes over once the lease expires, commits one batch, and dies inside its second.
      await expireLease(imp.id);
      const crashing = new ImportRunner(ts.store, {
        batchSize: 200,
        leaseMs,
        beforeCommit: (_id, batch) => {
          if (batch === 2) throw new Error("simulated crash before the commit");
        },
      });
      assert.equal(await crashing.runOnce({ importId: imp.id }), "error");
      const afterB = (await findImport(ts.store.db, imp.id))!;
      assert.equal(afterB.processed_rows, 800, "the batch that crashed left nothing behind");
      assert.equal(afterB.created + afterB.updated + afterB.unchanged + afterB.failed_rows, 800);
      const errorsSoFar = await ts.store.db
        .selectFrom("import_errors")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .where("import_id", "=", imp.id)
        .executeTakeFirstOrThrow();
      assert.equal(Number(errorsSoFar.n), afterB.failed_rows);

      // Runner C resumes after the last committed batch and finishes.
      await expireLease(imp.id);
      const c = new ImportRunner(ts.store, { batchSize: 200, leaseMs });
      assert.equal(await c.runOnce({ importId: imp.id }), "finished");
      const done = (await findImport(ts.store.db, imp.id))!;
      assert.equal(done.status, "completed");
      assert.deepEqual(countsOf(done), EXPECTED);
      assert.equal(done.attempts, 3);
      assert.equal(await contactsOf(account), EXPECTED.created);
      const errors = await ts.store.db
        .selectFrom("import_errors")
        .select("row_no")
        .where("import_id", "=", imp.id)
        .orderBy("row_no")
        .execute();
      assert.deepEqual(
        errors.map((e) => e.row_no),
        Array.from({ length: 25 }, (_, k) => k * 100 + 100),
        "each bad row reported once, with its row number",
      );
    });

    test("a runner that lost its lease cannot commit; two runners never both claim one import", async () => {
      const account = await newAccount();
      const imp = await queue(account, "phone_number\n+628270000001\n+628270000002\n");
      const x = await claimImport(ts.store.db, "runner_x", Date.now(), 60_000, imp.id);
      const y = await claimImport(ts.store.db, "runner_y", Date.now(), 60_000, imp.id);
      assert.ok(x);
      assert.equal(y, undefined, "a held import is not claimed again");
      const records: ImportRecord[] = [];
      for await (const r of readRecords(storedFile(ts.store.db, x), "csv")) records.push(r);
      await assert.rejects(
        ts.store.transaction((tx) =>
          commitImportBatch(tx, x, account, records, 0, {
            owner: "runner_y",
            durationMs: 1000,
          }),
        ),
        LeaseLost,
      );
      await assert.rejects(
        ts.store.transaction((tx) =>
          commitImportBatch(tx, x, account, records, 1, {
            owner: "runner_x",
            durationMs: 1000,
          }),
        ),
        LeaseLost,
        "a stale checkpoint is refused",
      );
      const row = (await findImport(ts.store.db, imp.id))!;
      assert.equal(row.processed_rows, 0);
      assert.equal(await contactsOf(account), 0);
    });

    test("an import interrupted more than maxAttempts times is failed with its true counts", async () => {
      const account = await newAccount();
      const imp = await queue(account, nastyFile());
      for (let i = 0; i < 2; i++) {
        const r = new ImportRunner(ts.store, { batchSize: 500, leaseMs: 10 * 60_000, maxAttempts: 2 });
        assert.equal(await r.runOnce({ importId: imp.id, maxBatches: 1 }), "paused");
        await expireLease(imp.id);
      }
      const last = new ImportRunner(ts.store, { batchSize: 500, leaseMs: 10 * 60_000, maxAttempts: 2 });
      assert.equal(await last.runOnce({ importId: imp.id }), "finished");
      const row = (await findImport(ts.store.db, imp.id))!;
      assert.equal(row.status, "failed");
      assert.match(row.failure ?? "", /interrupted/);
      assert.equal(row.processed_rows, 1000);
      assert.equal(row.created + row.updated + row.unchanged + row.failed_rows, 1000);
      assert.equal(await contactsOf(account), row.created);
    });

    test("the app resumes an interrupted import on start and stops its runner on close", async () => {
      const account = await newAccount();
      const imp = await queue(account, nastyFile());
      const dead = new ImportRunner(ts.store, { batchSize: 400, leaseMs: 10 * 60_000 });
      assert.equal(await dead.runOnce({ importId: imp.id, maxBatches: 2 }), "paused");
      await expireLease(imp.id);
      const app = await buildApp(loadConfig({ LOG_LEVEL: "silent", ...ts.env }), {
        store: ts.store,
        jobs: { pollMs: 20, batchSize: 400 },
      });
      await app.ready();
      const deadline = Date.now() + 300_000; // generous: only a hang should reach it
      let row = (await findImport(ts.store.db, imp.id))!;
      while (row.status !== "completed" && Date.now() < deadline) {
        await sleep(25);
        row = (await findImport(ts.store.db, imp.id))!;
      }
      await app.close();
      assert.equal(row.status, "completed");
      assert.deepEqual(countsOf(row), EXPECTED);
      assert.equal(await contactsOf(account), EXPECTED.created);
    });
  });
}
