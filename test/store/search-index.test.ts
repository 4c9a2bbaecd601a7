/**
 * The search-index maintainer (src/jobs/search-index.ts): SQLite's trigram
 * index, written in many segments by many transactions, is merged into one,
 * and searches answer the same before and after.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "kysely";
import { type BulkContact, bulkInsertContacts } from "../../bench/lib/bulk-insert.ts";
import { createAccount } from "../../src/domain/accounts.ts";
import { contactFilters } from "../../src/domain/contacts.ts";
import { createOrganization } from "../../src/domain/organizations.ts";
import { SearchIndexMaintainer } from "../../src/jobs/search-index.ts";
import { listContactViews } from "../../src/store/repositories/contacts.ts";
import { eventually } from "../helpers/eventually.ts";
import { createTestStore, type TestStore } from "../helpers/harness.ts";

describe("search-index maintainer [sqlite]", () => {
  let t: TestStore;
  let orgId: string;
  const segments = async () =>
    Number(
      (await sql<{ n: number }>`SELECT count(DISTINCT segid) AS n FROM contacts_fts_idx`.execute(t.store.db))
        .rows[0]!.n,
    );
  const search = async (term: string) =>
    (
      await listContactViews(t.store.db, contactFilters(orgId, undefined, { search: term }), undefined, 101)
    ).map((c) => c.id);

  before(async () => {
    t = await createTestStore("sqlite");
    await t.store.migrate();
    orgId = (await createOrganization(t.store.db, { name: "Segments" })).id;
    const accountId = (
      await createAccount(t.store.db, orgId, {
        phone_number_id: "720000000001",
        phone_number: "+6281100000301",
      })
    ).id;
    // One transaction per batch: FTS5 writes a segment each, merging only some.
    for (let batch = 0; batch < 40; batch++) {
      const rows: BulkContact[] = Array.from({ length: 25 }, (_, i) => ({
        accountId,
        at: Date.UTC(2025, 0, 1) + (batch * 25 + i) * 1000,
        input: {
          phone_number: `+62815${String(10_000_000 + batch * 25 + i)}`,
          display_name: `${i % 5 === 0 ? "Kusumawardani" : "Sari"} Batch${batch}`,
        },
      }));
      await t.store.transaction((tx) =>
        bulkInsertContacts({ db: tx, organizationId: orgId }, rows, "import"),
      );
    }
  });
  after(async () => {
    await t.drop();
  });

  test("merges the segments into one, a bounded step at a time; searches answer the same", async () => {
    assert.ok((await segments()) > 1, "bulk writes left several segments");
    const terms = ["kusumawardani", "batch1", "sari", "6281510000"];
    const answers = await Promise.all(terms.map(search));
    const maintainer = new SearchIndexMaintainer(t.store, { pagesPerStep: 1 });
    assert.equal(await maintainer.mergeAll(), true);
    assert.equal(await segments(), 1);
    assert.deepEqual(await Promise.all(terms.map(search)), answers);
    // Nothing left to merge: one no-op step.
    assert.equal(await maintainer.mergeAll(), true);
    assert.equal(await segments(), 1);
  });

  test("start() merges in the background, and stop() ends the loop", async () => {
    const accountId = (
      await createAccount(t.store.db, orgId, {
        phone_number_id: "720000000002",
        phone_number: "+6281100000302",
      })
    ).id;
    for (let batch = 0; batch < 10; batch++) {
      await t.store.transaction((tx) =>
        bulkInsertContacts(
          { db: tx, organizationId: orgId },
          [
            {
              accountId,
              at: Date.UTC(2026, 0, 1) + batch,
              input: { phone_number: `+62816${10_000_000 + batch}` },
            },
          ],
          "import",
        ),
      );
    }
    assert.ok((await segments()) > 1);
    const maintainer = new SearchIndexMaintainer(t.store, { intervalMs: 60_000, pagesPerStep: 1 });
    maintainer.start();
    try {
      await eventually(segments, (n) => n === 1, "one segment");
    } finally {
      await maintainer.stop();
    }
  });

  test("an update that leaves the search text alone leaves the index alone; one that changes it is searchable", async () => {
    const maintainer = new SearchIndexMaintainer(t.store, { pagesPerStep: 64 });
    assert.equal(await maintainer.mergeAll(), true);
    assert.equal(await segments(), 1);
    const [target] = await search("kusumawardani");
    assert.ok(target);
    // An upsert sets every column, search_text included, to what it already is (a metadata change).
    await t.store.transaction((tx) =>
      sql`UPDATE contacts SET metadata = '{"n":1}', search_text = search_text WHERE id = ${target}`.execute(
        tx,
      ),
    );
    assert.equal(await segments(), 1, "no index entries rewritten (SQLite migration 0014)");
    await t.store.transaction((tx) =>
      sql`UPDATE contacts SET search_text = search_text || ' zyxwvutsrq' WHERE id = ${target}`.execute(tx),
    );
    assert.equal(await segments(), 2, "the changed text's entries were written");
    assert.deepEqual(await search("zyxwvutsrq"), [target]);
  });

  test("notify() (an import ended) merges at once, whatever the interval", async () => {
    const maintainer = new SearchIndexMaintainer(t.store, {
      intervalMs: 24 * 60 * 60 * 1000,
      pagesPerStep: 64,
    });
    maintainer.start();
    try {
      await eventually(segments, (n) => n === 1, "one segment after start");
      const accountId = (
        await createAccount(t.store.db, orgId, {
          phone_number_id: "720000000003",
          phone_number: "+6281100000303",
        })
      ).id;
      for (let batch = 0; batch < 3; batch++) {
        await t.store.transaction((tx) =>
          bulkInsertContacts(
            { db: tx, organizationId: orgId },
            [
              {
                accountId,
                at: Date.UTC(2026, 1, 1) + batch,
                input: { phone_number: `+62817${10_000_000 + batch}` },
              },
            ],
            "import",
          ),
        );
      }
      assert.ok((await segments()) > 1);
      maintainer.notify();
      await eventually(segments, (n) => n === 1, "one segment after notify()");
    } finally {
      await maintainer.stop();
    }
  });
});
