/**
 * Tenant isolation: random interleaved operations by three organisations
 * against a model of what each may see. Operations of different
 * organisations run concurrently (rounds of at most one operation per
 * organisation); a third of them aim at another organisation's contacts or
 * accounts. Invariant: 0 cross-organisation reads or writes — foreign ids are
 * 404, lists and searches contain exactly the organisation's own contacts, and
 * a foreign write changes nothing. Scale: PB_ISOLATION_RUNS sequences
 * (npm test: 8, reliability mode: 60) of up to 60 operations.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { storeKinds } from "../helpers/env.ts";
import { createHarness, type Harness, type Json } from "../helpers/harness.ts";
import { fuzzSeed, scaled } from "../helpers/reliability.ts";

const RUNS = scaled("PB_ISOLATION_RUNS", 8, 60);
const ORGS = 3;
/** A small pool, so the same person appears in several organisations and duplicates happen. */
const PHONES = ["+628111000001", "+628111000002", "+628111000003", "+14155550100", "+447700900123"];

type Target = { org: number; pick: number };
type Op =
  | { kind: "create"; org: number; account: number; phone: number; scoped: boolean }
  | { kind: "get"; org: number; target: Target; scoped: boolean }
  | { kind: "patch"; org: number; target: Target; scoped: boolean }
  | { kind: "delete"; org: number; target: Target; scoped: boolean }
  | { kind: "list"; org: number; account: number | undefined }
  | { kind: "search"; org: number; term: "zq" | "phone" }
  | { kind: "foreignAccount"; org: number; victim: number };

const org = fc.integer({ min: 0, max: ORGS - 1 });
const target = fc.record({ org, pick: fc.nat() });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("create" as const),
      org,
      account: fc.nat(),
      phone: fc.nat(PHONES.length - 1),
      scoped: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant("get" as const), org, target, scoped: fc.boolean() }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("patch" as const), org, target, scoped: fc.boolean() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("delete" as const), org, target, scoped: fc.boolean() }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("list" as const),
      org,
      account: fc.option(fc.nat(), { nil: undefined }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("search" as const),
      org,
      term: fc.constantFrom("zq" as const, "phone" as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("foreignAccount" as const), org, victim: org }) },
);

interface ModelContact {
  id: string;
  account: number;
  phone: string;
  name: string;
}

interface World {
  orgs: Array<{
    id: string;
    auth: { authorization: string };
    accounts: Array<{ id: string; phoneNumberId: string }>;
    contacts: Map<string, ModelContact>;
    /** Every id the organisation ever had, deleted ones included. */
    everSeen: string[];
  }>;
}

for (const kind of storeKinds()) {
  describe(`tenant isolation [${kind}]`, () => {
    let h: Harness;
    let checked = 0;
    let crossOrg = 0;
    let counter = 0;

    before(async () => {
      h = await createHarness(kind);
    });
    after(async () => {
      console.log(
        `# isolation [${kind}]: ${checked} operations checked, ${crossOrg} of them aimed at another organisation`,
      );
      await h.close();
    });

    async function newWorld(): Promise<World> {
      const orgs: World["orgs"] = [];
      for (let i = 0; i < ORGS; i++) {
        const tenant = await h.tenant(`Org ${i}`);
        const accounts = [];
        for (let a = 0; a < (i === 0 ? 2 : 1); a++) accounts.push(await h.account(tenant.orgId));
        orgs.push({ id: tenant.orgId, auth: tenant.auth, accounts, contacts: new Map(), everSeen: [] });
      }
      return { orgs };
    }

    function base(world: World, o: number, account: number | undefined): string {
      if (account === undefined) return "/v1/contacts";
      const accounts = world.orgs[o]!.accounts;
      return `/v1/${accounts[account % accounts.length]!.phoneNumberId}/contacts`;
    }

    /** A contact id of the target organisation (live or deleted), or a fresh unknown one. */
    function pickId(world: World, t: Target): { id: string; account: number } | undefined {
      const seen = world.orgs[t.org]!.everSeen;
      if (seen.length === 0) return undefined;
      const id = seen[t.pick % seen.length]!;
      return { id, account: world.orgs[t.org]!.contacts.get(id)?.account ?? 0 };
    }

    async function listAll(world: World, o: number, url: string): Promise<Json[]> {
      const items: Json[] = [];
      let cursor: string | null = null;
      do {
        const sep = url.includes("?") ? "&" : "?";
        const res = await h.inject({
          method: "GET",
          url: `${url}${sep}limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
          headers: world.orgs[o]!.auth,
        });
        assert.equal(res.statusCode, 200, res.body);
        const body = res.json();
        items.push(...body.data);
        cursor = body.next_cursor;
      } while (cursor);
      return items;
    }

    function assertSameIds(actual: Json[], expected: ModelContact[], what: string): void {
      const got = actual.map((c) => c.id as string).sort();
      const want = expected.map((c) => c.id).sort();
      assert.deepEqual(got, want, `${what}: the list differs from the organisation's own contacts`);
    }

    async function run(world: World, op: Op): Promise<void> {
      const me = world.orgs[op.org]!;
      const headers = me.auth;
      checked += 1;
      switch (op.kind) {
        case "create": {
          const account = op.account % me.accounts.length;
          const phone = PHONES[op.phone]!;
          const name = `zq ${op.org} ${++counter}`;
          const url = op.scoped ? base(world, op.org, account) : "/v1/contacts";
          const body: Json = { phone_number: phone, name };
          if (!op.scoped) body.from = me.accounts[account]!.phoneNumberId;
          const res = await h.inject({ method: "POST", url, headers, payload: body });
          const existing = [...me.contacts.values()].find((c) => c.account === account && c.phone === phone);
          if (existing) {
            assert.equal(res.statusCode, 409, res.body);
            assert.equal(
              res.json().error.existing_id,
              existing.id,
              "409 names the organisation's own contact",
            );
          } else {
            assert.equal(res.statusCode, 201, res.body);
            const id = res.json().data.id as string;
            me.contacts.set(id, { id, account, phone, name });
            me.everSeen.push(id);
          }
          return;
        }
        case "get":
        case "patch":
        case "delete": {
          const picked = pickId(world, op.target);
          if (!picked) return;
          const foreign = op.target.org !== op.org;
          if (foreign) crossOrg += 1;
          // Scoped paths use one of the caller's own accounts: a foreign contact is still not there.
          const url = `${base(world, op.org, op.scoped ? picked.account : undefined)}/${picked.id}`;
          const name = `zq ${op.org} ${++counter}`;
          const res = await h.inject({
            method: op.kind === "get" ? "GET" : op.kind === "patch" ? "PATCH" : "DELETE",
            url,
            headers,
            ...(op.kind === "patch" ? { payload: { name } } : {}),
          });
          const mine = foreign ? undefined : me.contacts.get(picked.id);
          const visible =
            mine !== undefined && (!op.scoped || mine.account === picked.account % me.accounts.length);
          if (!visible) {
            assert.equal(
              res.statusCode,
              404,
              `${op.kind} ${foreign ? "foreign" : "deleted"} contact: ${res.body}`,
            );
            assert.equal(res.json().error.code, "resource_not_found");
            return;
          }
          assert.equal(res.statusCode, 200, res.body);
          if (op.kind === "get") {
            assert.equal(res.json().data.name, mine.name);
            assert.equal(res.json().data.phone_number, mine.phone);
          } else if (op.kind === "patch") {
            assert.equal(res.json().data.name, name);
            mine.name = name;
          } else {
            me.contacts.delete(picked.id);
          }
          return;
        }
        case "list": {
          const account = op.account === undefined ? undefined : op.account % me.accounts.length;
          const items = await listAll(world, op.org, base(world, op.org, account));
          const expected = [...me.contacts.values()].filter(
            (c) => account === undefined || c.account === account,
          );
          assertSameIds(items, expected, `list of org ${op.org}`);
          for (const item of items) assert.equal(item.name, me.contacts.get(item.id)?.name);
          return;
        }
        case "search": {
          // Every organisation has contacts named "zq …" with the same phone numbers.
          const term = op.term === "zq" ? "zq" : "811100000";
          const items = await listAll(world, op.org, `/v1/contacts?search=${term}`);
          const expected = [...me.contacts.values()].filter((c) =>
            op.term === "zq" ? c.name.includes("zq") : c.phone.replace("+", "").includes(term),
          );
          assertSameIds(items, expected, `search ${term} of org ${op.org}`);
          return;
        }
        case "foreignAccount": {
          if (op.victim === op.org) return;
          crossOrg += 1;
          const victim = world.orgs[op.victim]!.accounts[0]!;
          for (const [method, url, payload] of [
            ["GET", `/v1/${victim.phoneNumberId}/contacts`, undefined],
            ["POST", `/v1/${victim.phoneNumberId}/contacts`, { phone_number: PHONES[0], name: "intruder" }],
            [
              "POST",
              "/v1/contacts",
              { phone_number: PHONES[1], name: "intruder", from: victim.phoneNumberId },
            ],
          ] as const) {
            const res = await h.inject({ method, url, headers, ...(payload ? { payload } : {}) });
            assert.equal(res.statusCode, 404, `${method} ${url} with a foreign account: ${res.body}`);
          }
          return;
        }
      }
    }

    /** The store agrees with the model: each organisation holds exactly its contacts, on its own accounts. */
    async function checkStore(world: World): Promise<void> {
      for (const o of world.orgs) {
        const rows = await h.store.db
          .selectFrom("contacts")
          .innerJoin("accounts", "accounts.id", "contacts.account_id")
          .select(["contacts.id", "contacts.display_name", "accounts.organization_id as account_org"])
          .where("contacts.organization_id", "=", o.id)
          .execute();
        assert.deepEqual(rows.map((r) => r.id).sort(), [...o.contacts.keys()].sort());
        for (const row of rows) {
          assert.equal(row.account_org, o.id, "a contact sits on another organisation's account");
          assert.equal(row.display_name, o.contacts.get(row.id)?.name);
        }
      }
    }

    test("three organisations never see or touch each other's contacts", async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 20, maxLength: 60 }), async (ops) => {
          const world = await newWorld();
          // Rounds of at most one operation per organisation, run concurrently.
          let round: Op[] = [];
          const flush = async () => {
            await Promise.all(round.map((op) => run(world, op)));
            round = [];
          };
          for (const op of ops) {
            if (round.some((r) => r.org === op.org)) await flush();
            round.push(op);
          }
          await flush();
          await checkStore(world);
        }),
        { numRuns: RUNS, seed: fuzzSeed(), endOnFailure: true },
      );
      assert.ok(crossOrg > 0, "some operations aimed at another organisation");
    });
  });
}
