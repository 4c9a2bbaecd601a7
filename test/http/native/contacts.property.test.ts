import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { createContact, type Scope } from "../../../src/domain/contacts.ts";
import { findAccountByPhoneNumberId } from "../../../src/store/repositories/accounts.ts";
import { storeKinds } from "../../helpers/env.ts";
import { createHarness, type Harness, type Tenant } from "../../helpers/harness.ts";

const RUNS = Number(process.env.PB_PROPERTY_RUNS ?? 12);

for (const kind of storeKinds()) {
  describe(`native contact lists, properties [${kind}]`, () => {
    let h: Harness;
    let phoneCounter = 0;
    const nextPhone = () => `+1415${String(5_000_000 + ++phoneCounter).padStart(7, "0")}`;

    before(async () => {
      h = await createHarness(kind);
    });
    after(async () => {
      await h.close();
    });

    async function freshAccount(): Promise<{ tenant: Tenant; scope: Scope; pnid: string }> {
      const tenant = await h.tenant();
      const { phoneNumberId } = await h.account(tenant.orgId);
      return {
        tenant,
        pnid: phoneNumberId,
        scope: { db: h.store.db, organizationId: tenant.orgId },
      };
    }

    test("walking every page while others insert and delete returns each surviving row exactly once", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 0, max: 40 }),
          fc.array(
            fc.record({
              limit: fc.integer({ min: 1, max: 7 }),
              inserts: fc.integer({ min: 0, max: 3 }),
              deletes: fc.array(fc.nat(), { maxLength: 3 }),
            }),
            { minLength: 1, maxLength: 30 },
          ),
          fc.boolean(),
          async (initial, steps, scoped) => {
            const { tenant, scope, pnid } = await freshAccount();
            const account = (await findAccountByPhoneNumberId(h.store.db, pnid))!;
            const alive = new Set<string>();
            const everSeen = new Set<string>();
            for (let i = 0; i < initial; i++) {
              const c = await createContact(scope, account, { phone_number: nextPhone() }, "api");
              alive.add(c.id);
              everSeen.add(c.id);
            }
            const survivors = new Set(alive);
            const returned: string[] = [];
            const base = scoped ? `/v1/${pnid}/contacts` : "/v1/contacts";
            let cursor: string | null = null;
            let step = 0;
            do {
              const { limit, inserts, deletes } = steps[step % steps.length]!;
              step += 1;
              const url = `${base}?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
              const res = await h.inject({ method: "GET", url, headers: tenant.auth });
              assert.equal(res.statusCode, 200, res.body);
              const page = res.json() as {
                data: Array<{ id: string }>;
                has_more: boolean;
                next_cursor: string | null;
              };
              assert.equal(page.has_more, page.next_cursor !== null);
              assert.ok(page.data.length <= limit);
              returned.push(...page.data.map((c) => c.id));
              cursor = page.next_cursor;
              // Concurrent writers: new contacts appear and some existing ones go away.
              for (let i = 0; i < inserts; i++) {
                const c = await createContact(scope, account, { phone_number: nextPhone() }, "api");
                alive.add(c.id);
                everSeen.add(c.id);
              }
              const aliveList = [...alive];
              for (const d of deletes) {
                if (aliveList.length === 0) break;
                const victim = aliveList[d % aliveList.length]!;
                if (!alive.delete(victim)) continue;
                survivors.delete(victim);
                await h.store.db.deleteFrom("contacts").where("id", "=", victim).execute();
              }
            } while (cursor !== null);
            assert.equal(new Set(returned).size, returned.length, "no row is returned twice");
            for (const id of returned) assert.ok(everSeen.has(id), "only rows that existed are returned");
            for (const id of survivors) assert.ok(returned.includes(id), `surviving row ${id} was returned`);
          },
        ),
        { numRuns: RUNS },
      );
    });

    test("search returns exactly what a brute-force filter over the same data returns", async () => {
      const alphabet = ["a", "b", "n", "A", "N", "é", "É", "ß", " ", "%", "_", "1", "2"];
      const word = fc
        .array(fc.constantFrom(...alphabet), { minLength: 1, maxLength: 8 })
        .map((cs) => cs.join(""));
      const person = fc.record({
        name: fc.option(word, { nil: undefined }),
        email: fc.option(
          fc
            .tuple(fc.stringMatching(/^[abn12]{1,5}$/), fc.constantFrom("ab.co", "nn.io"))
            .map(([u, d]) => `${u}@${d}`),
          { nil: undefined },
        ),
      });
      await fc.assert(
        fc.asyncProperty(
          fc.array(person, { minLength: 1, maxLength: 25 }),
          fc.array(
            fc.array(fc.constantFrom(...alphabet), { minLength: 1, maxLength: 4 }).map((cs) => cs.join("")),
            {
              minLength: 1,
              maxLength: 6,
            },
          ),
          fc.integer({ min: 1, max: 10 }),
          async (people, queries, limit) => {
            const { tenant, scope, pnid } = await freshAccount();
            const account = (await findAccountByPhoneNumberId(h.store.db, pnid))!;
            const stored: Array<{
              id: string;
              name?: string | undefined;
              email?: string | undefined;
              phone: string;
            }> = [];
            for (const p of people) {
              const phone = nextPhone();
              const name = p.name?.trim() ? p.name : undefined;
              const c = await createContact(
                scope,
                account,
                { phone_number: phone, display_name: name, email: p.email },
                "api",
              );
              stored.push({ id: c.id, name: c.display_name ?? undefined, email: p.email, phone });
            }
            for (const q of queries) {
              const term = /\d/.test(q) && /^[\d\s\-.()+]+$/.test(q) ? q.replace(/\D/g, "") : q.toLowerCase();
              const expected = stored
                .filter(
                  (c) =>
                    (c.name ?? "").toLowerCase().includes(term) ||
                    (c.email ?? "").toLowerCase().includes(term) ||
                    c.phone.replace(/\D/g, "").includes(term),
                )
                .map((c) => c.id)
                .sort();
              const got: string[] = [];
              let cursor: string | null = null;
              do {
                const url = `/v1/contacts?search=${encodeURIComponent(q)}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
                const res = await h.inject({ method: "GET", url, headers: tenant.auth });
                assert.equal(res.statusCode, 200, res.body);
                got.push(...res.json().data.map((c: { id: string }) => c.id));
                cursor = res.json().next_cursor;
              } while (cursor);
              assert.deepEqual([...got].sort(), expected, `search ${JSON.stringify(q)}`);
            }
          },
        ),
        { numRuns: RUNS },
      );
    });
  });
}
