/**
 * The contact list's query plans: results are the same whatever plan the
 * store picks (checked against a brute-force answer on both stores), and on
 * SQLite the plans are the intended ones without statistics (an identity
 * filter uses its index; the search fallback drives from the trigram index).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import SqliteDatabase from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";
import { type BulkContact, bulkInsertContacts } from "../../bench/lib/bulk-insert.ts";
import { createAccount } from "../../src/domain/accounts.ts";
import { contactFilters, type ContactFilters as ListQuery } from "../../src/domain/contacts.ts";
import { createOrganization } from "../../src/domain/organizations.ts";
import { newId } from "../../src/ids.ts";
import { insertLabelRows } from "../../src/store/repositories/bulk-insert.ts";
import {
  type ContactFilters,
  type ContactView,
  findContactView,
  type Keyset,
  listContactViews,
  listContactViewsBefore,
  SEARCH_WALK_BUDGET,
} from "../../src/store/repositories/contacts.ts";
import type { Database } from "../../src/store/schema.ts";
import { storeKinds } from "../helpers/env.ts";
import { createTestStore, type TestStore } from "../helpers/harness.ts";

const N = SEARCH_WALK_BUDGET * 2;
const FIRST = ["Muhammad", "Budi", "Siti", "Agus", "Dewi"];

for (const kind of storeKinds()) {
  describe(`contact list plans [${kind}]`, () => {
    let t: TestStore;
    let orgId: string;
    let accountId: string;
    const all: Array<{
      id: string;
      created_at: number;
      updated_at: number;
      search_text: string;
      phone_number: string | null;
      marketing_opt_out: number;
      labelled: boolean;
    }> = [];
    const labelId = newId("lbl");

    before(async () => {
      t = await createTestStore(kind, { migrated: true });
      await t.store.migrate();
      orgId = (await createOrganization(t.store.db, { name: "Plans" })).id;
      const otherOrg = (await createOrganization(t.store.db, { name: "Noise" })).id;
      accountId = (
        await createAccount(t.store.db, orgId, {
          phone_number_id: "710000000001",
          phone_number: "+6281100000201",
        })
      ).id;
      const otherAccount = (
        await createAccount(t.store.db, otherOrg, {
          phone_number_id: "710000000002",
          phone_number: "+6281100000202",
        })
      ).id;
      await insertLabelRows(t.store.db, [
        {
          id: labelId,
          organization_id: orgId,
          name: "vip",
          name_lower: "vip",
          color: "green",
          created_at: 1,
          updated_at: 1,
        },
      ]);
      const make = (account: string, i: number): BulkContact => ({
        accountId: account,
        // Pairs of equal created_at: the id breaks ties.
        at: Date.UTC(2025, 0, 1) + Math.floor(i / 2) * 1000,
        input: {
          phone_number: `+62813${String(10_000_000 + i)}`,
          display_name: `${i % 500 === 7 ? "Zanzibar" : FIRST[i % 5]} ${i < N / 5 && i % 3 === 0 ? "Kusuma " : ""}Number${i}${i % 60 === 11 ? " Quokka" : ""}`,
          email: i % 3 === 0 ? `p${i}@example.com` : undefined,
          label_ids: account === accountId && i % 7 === 0 ? [labelId] : undefined,
        },
      });
      await t.store.transaction(async (tx) => {
        const scope = { db: tx };
        await bulkInsertContacts(
          { ...scope, organizationId: orgId },
          Array.from({ length: N }, (_, i) => make(accountId, i)),
          "import",
        );
        await bulkInsertContacts(
          { ...scope, organizationId: otherOrg },
          Array.from({ length: 500 }, (_, i) => make(otherAccount, i)),
          "import",
        );
      });
      // Rowids follow creation time only roughly: rows written later but dated
      // anywhere in the history (backdated), and rows whose created_at moved
      // afterwards (as a merge and its undo do), some matching the terms below.
      await t.store.transaction(async (tx) => {
        await bulkInsertContacts(
          { db: tx, organizationId: orgId },
          Array.from({ length: 300 }, (_, i) => ({
            accountId,
            at: Date.UTC(2025, 0, 1) + ((i * 7919) % N) * 500 + 250,
            input: {
              phone_number: `+62814${String(10_000_000 + i)}`,
              display_name: `${i % 4 === 0 ? "Kusuma" : i % 4 === 1 ? "Quokka" : "Late"} Backdated${i}`,
            },
          })),
          "import",
        );
      });
      for (const [from, to] of [
        [N - 3, Date.UTC(2024, 0, 1)],
        [5, Date.UTC(2027, 0, 1)],
        [30, Date.UTC(2025, 0, 1) + 1500],
      ] as const) {
        await t.store.db
          .updateTable("contacts")
          .set({ created_at: to })
          .where("phone_number", "=", `+62813${String(10_000_000 + from)}`)
          .execute();
      }
      // Some contacts opted out and were updated later than created.
      await t.store.db
        .updateTable("contacts")
        .set({ marketing_opt_out: 1, updated_at: Date.UTC(2026, 0, 1) })
        .where("phone_number", "like", "%3")
        .execute();
      const labelled = new Set(
        (
          await t.store.db
            .selectFrom("contact_labels")
            .select("contact_id")
            .where("label_id", "=", labelId)
            .execute()
        ).map((r) => r.contact_id),
      );
      all.push(
        ...(
          await t.store.db
            .selectFrom("contacts")
            .select(["id", "created_at", "updated_at", "search_text", "phone_number", "marketing_opt_out"])
            .where("organization_id", "=", orgId)
            .execute()
        ).map((r) => ({ ...r, labelled: labelled.has(r.id) })),
      );
      all.sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    });
    after(async () => {
      await t.drop();
    });

    async function walk(query: ListQuery, limit: number, viaAccount = false): Promise<string[]> {
      const ids: string[] = [];
      let position: Keyset | undefined;
      for (let page = 0; page < 1000; page++) {
        const rows: ContactView[] = await listContactViews(
          t.store.db,
          contactFilters(orgId, viaAccount ? accountId : undefined, query),
          position,
          limit + 1,
        );
        const kept = rows.slice(0, limit);
        ids.push(...kept.map((r) => r.id));
        if (rows.length <= limit) return ids;
        const last = kept[kept.length - 1]!;
        position = { created_at: last.created_at, id: last.id };
      }
      throw new Error("did not finish");
    }

    test("a contact by id: the compiled query is rerun with each call's values, scoped by organisation and account", async () => {
      const labelledOne = all.find((c) => c.labelled)!;
      for (const target of [all[0]!, all[777]!, all[N - 1]!, labelledOne]) {
        const view = await findContactView(t.store.db, orgId, target.id);
        assert.equal(view?.id, target.id);
        assert.equal(view?.phone_number, target.phone_number);
        assert.equal(view?.account_phone_number, "+6281100000201");
        assert.deepEqual(view?.labels, target.labelled ? [{ id: labelId, name: "vip", color: "green" }] : []);
        assert.equal((await findContactView(t.store.db, orgId, target.id, accountId))?.id, target.id);
      }
      const other = await t.store.db
        .selectFrom("contacts")
        .select(["id", "organization_id", "account_id"])
        .where("organization_id", "!=", orgId)
        .executeTakeFirstOrThrow();
      assert.equal(await findContactView(t.store.db, orgId, other.id), undefined, "another organisation's");
      assert.equal(
        await findContactView(t.store.db, other.organization_id, all[0]!.id),
        undefined,
        "seen from the other organisation",
      );
      assert.equal(
        await findContactView(t.store.db, other.organization_id, other.id, accountId),
        undefined,
        "through an account that is not its own",
      );
      assert.equal(
        (await findContactView(t.store.db, other.organization_id, other.id, other.account_id))?.id,
        other.id,
      );
    });

    test("an exact phone filter finds its one contact, org-level and account-scoped", async () => {
      const target = all[1234]!;
      for (const viaAccount of [false, true]) {
        assert.deepEqual(await walk({ phone: target.phone_number! }, 25, viaAccount), [target.id]);
      }
    });

    test("searches return what a brute-force scan returns, in order, across pages", async () => {
      // "zanzibar": 8 hits (fallback phase); "muhammad": every 5th (walk phase);
      // "number1": a few hundred, spread (walk, then fallback near the end);
      // "quokka": 1 in 60 (on PostgreSQL ~33 in the first walk, a page in the wider walk, then the fallback);
      // "kusuma": only among the oldest rows and the backdated ones (fallback, several steps).
      for (const term of ["zanzibar", "muhammad", "number1", "p1", "quokka", "kusuma", "backdated1"]) {
        const expected = all.filter((c) => c.search_text.includes(term)).map((c) => c.id);
        assert.ok(expected.length > 0, term);
        assert.deepEqual(await walk({ search: term }, 40), expected, term);
      }
    });

    test("every filter, alone and with a search, returns what a brute-force scan returns, across pages", async () => {
      const mid = all[Math.floor(N / 2)]!.created_at;
      type Row = (typeof all)[number];
      const cases: Array<[ListQuery, (c: Row) => boolean]> = [
        [{ label: labelId }, (c) => c.labelled],
        [{ created_after: mid }, (c) => c.created_at > mid],
        [{ created_before: mid }, (c) => c.created_at < mid],
        [{ updated_after: Date.UTC(2025, 6, 1) }, (c) => c.updated_at > Date.UTC(2025, 6, 1)],
        [{ marketing_opt_out: true }, (c) => c.marketing_opt_out === 1],
        [
          { search: "zanzibar", created_before: mid },
          (c) => c.search_text.includes("zanzibar") && c.created_at < mid,
        ],
        [{ search: "number1", label: labelId }, (c) => c.search_text.includes("number1") && c.labelled],
        [
          { search: "muhammad", marketing_opt_out: false },
          (c) => c.search_text.includes("muhammad") && c.marketing_opt_out === 0,
        ],
      ];
      for (const [query, keep] of cases) {
        const expected = all.filter(keep).map((c) => c.id);
        assert.ok(expected.length > 0, JSON.stringify(query));
        assert.deepEqual(await walk(query, 40), expected, JSON.stringify(query));
      }
    });

    /** Every page forward (after), then every page backward (before) from the end; both must match. */
    async function walkBothWays(filters: ContactFilters, limit: number): Promise<[string[], string[]]> {
      const forward: string[] = [];
      let position: Keyset | undefined;
      for (let page = 0; page < 1000; page++) {
        const rows = await listContactViews(t.store.db, filters, position, limit + 1);
        const kept = rows.slice(0, limit);
        forward.push(...kept.map((r) => r.id));
        if (rows.length <= limit) break;
        const last = kept[kept.length - 1]!;
        position = { created_at: last.created_at, id: last.id };
      }
      const backward: string[] = [];
      // Start just past the oldest contact of the organisation: every match is newer.
      let before: Keyset = { created_at: all[all.length - 1]!.created_at - 1, id: "" };
      for (let page = 0; page < 1000; page++) {
        const rows = await listContactViewsBefore(t.store.db, filters, before, limit);
        backward.unshift(...rows.map((r) => r.id));
        if (rows.length < limit) break;
        before = { created_at: rows[0]!.created_at, id: rows[0]!.id };
      }
      return [forward, backward];
    }

    test("substring filters (search, wa_id_contains) walk forward and backward like a brute-force scan", async () => {
      const digits = (c: (typeof all)[number]) => (c.phone_number ?? "").replace(/\D/g, "");
      const cases: Array<[Omit<ContactFilters, "organizationId">, (c: (typeof all)[number]) => boolean]> = [
        [{ searchTerm: "zanzibar" }, (c) => c.search_text.includes("zanzibar")],
        [{ searchTerm: "muhammad" }, (c) => c.search_text.includes("muhammad")],
        [{ searchTerm: "quokka" }, (c) => c.search_text.includes("quokka")],
        [{ searchTerm: "kusuma" }, (c) => c.search_text.includes("kusuma")],
        [{ searchTerm: "backdated" }, (c) => c.search_text.includes("backdated")],
        [{ phoneContains: "0012" }, (c) => digits(c).includes("0012")],
        [{ phoneContains: "77" }, (c) => digits(c).includes("77")],
        [
          { phoneContains: "1000", searchTerm: "siti" },
          (c) => digits(c).includes("1000") && c.search_text.includes("siti"),
        ],
      ];
      for (const [extra, keep] of cases) {
        const expected = all.filter(keep).map((c) => c.id);
        assert.ok(expected.length > 0, JSON.stringify(extra));
        const [forward, backward] = await walkBothWays({ organizationId: orgId, ...extra }, 40);
        assert.deepEqual(forward, expected, `forward ${JSON.stringify(extra)}`);
        assert.deepEqual(backward, expected, `backward ${JSON.stringify(extra)}`);
      }
    });

    if (kind === "sqlite") {
      test("SQLite plans: the identity index for a phone, the trigram index for the search fallback", async () => {
        const captured: Array<{ sql: string; parameters: readonly unknown[] }> = [];
        const file = join(t.env.DATA_DIR!, "phonebook.db");
        const raw = new SqliteDatabase(file, { readonly: true });
        const logged = new Kysely<Database>({
          dialect: new SqliteDialect({ database: raw }),
          log: (event) => {
            if (event.level === "query") captured.push(event.query);
          },
        });
        const plan = (index: number) =>
          (
            raw
              .prepare(`EXPLAIN QUERY PLAN ${captured[index]!.sql}`)
              .all(...captured[index]!.parameters) as Array<{ detail: string }>
          )
            .map((r) => r.detail)
            .join("\n");
        try {
          await listContactViews(
            logged,
            contactFilters(orgId, undefined, { phone: all[5]!.phone_number! }),
            undefined,
            26,
          );
          assert.match(
            plan(0),
            /USING INDEX contacts_organization_phone \(organization_id=\? AND phone_number=\?\)/,
          );
          assert.doesNotMatch(plan(0), /contacts_organization_created/);
          await listContactViews(
            logged,
            contactFilters(orgId, undefined, { search: "zanzibar" }),
            undefined,
            26,
          );
          assert.equal(
            captured.length,
            4,
            "a rare term walks, then reads its trigram hits, then their views",
          );
          assert.match(plan(1), /contacts_organization_created/, "the walk uses the ordered index");
          assert.match(plan(2), /USING INTEGER PRIMARY KEY \(rowid=\?\)/);
          assert.match(plan(2), /contacts_fts/);
          assert.doesNotMatch(plan(2), /contacts_organization_created/);
          assert.doesNotMatch(plan(2), /TEMP B-TREE/, "the hits come in rowid order, unsorted");
          assert.match(
            plan(3),
            /USING INDEX sqlite_autoindex_contacts_1 \(id=\?\)/,
            "the page's views by id",
          );
          assert.doesNotMatch(plan(3), /contacts_organization_/);
        } finally {
          await logged.destroy();
        }
      });
    }
  });
}
