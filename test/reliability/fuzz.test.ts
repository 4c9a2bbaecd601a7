/**
 * Fuzzing every route of every surface (read from the OpenAPI document).
 * Invariants for each request: never a 5xx, never a hang, errors in the
 * surface's shape with a catalogued code, and a rejected (4xx) request leaves
 * every table of the store unchanged. Scale: PB_FUZZ_RUNS per route
 * (npm test: 20, reliability mode: 250).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { requireAccountByPhoneNumberId } from "../../src/domain/accounts.ts";
import { createContact } from "../../src/domain/contacts.ts";
import { createApiKey, updateOrganization } from "../../src/domain/organizations.ts";
import { storeDigest } from "../helpers/digest.ts";
import { storeKinds } from "../helpers/env.ts";
import { errorShapeProblem } from "../helpers/error-shape.ts";
import { type FuzzContext, type FuzzRequest, fuzzRoutes, requestArb } from "../helpers/fuzz.ts";
import { ADMIN_TOKEN, createHarness, type Harness } from "../helpers/harness.ts";
import { fuzzSeed, scaled, withTimeout } from "../helpers/reliability.ts";

const RUNS_PER_ROUTE = scaled("PB_FUZZ_RUNS", 5, 250); // npm test: a quick pass; test:slow: the real fuzzing
/** "Never a hang": a request answered after this is a failure. Generous, because a loaded machine is slow, not hung. */
const REQUEST_TIMEOUT_MS = 120_000;

for (const kind of storeKinds()) {
  describe(`fuzzing every route [${kind}]`, () => {
    let h: Harness;
    let ctx: FuzzContext;
    let nativeAuth: Record<string, string>;
    let orgId: string;
    let fuzzed = 0;
    const statuses = new Map<number, number>();

    /** Keeps a few of the tenant's contacts alive, since fuzzed DELETEs may remove them. */
    async function ensureContacts(): Promise<void> {
      const own = ctx.ids.ctc ?? [];
      const alive: string[] = [];
      for (const id of own) {
        const row = await h.store.db
          .selectFrom("contacts")
          .select("id")
          .where("id", "=", id)
          .executeTakeFirst();
        if (row) alive.push(id);
      }
      while (alive.length < 4) {
        const account = await requireAccountByPhoneNumberId(h.store.db, orgId, ctx.phoneNumberIds[0]!);
        const phone = `+628${String(Math.floor(Math.random() * 1e9)).padStart(9, "0")}`;
        const contact = await createContact(
          { db: h.store.db, organizationId: orgId },
          account,
          {
            phone_number: phone,
            display_name: `Seed ${alive.length}`,
            email: "seed@example.com",
            metadata: { tier: "gold" },
          },
          "api",
        );
        alive.push(contact.id);
      }
      ctx.ids.ctc = [...alive, ...(ctx.ids.foreignCtc ?? [])];
    }

    before(async () => {
      h = await createHarness(kind);
      const tenant = await h.tenant("Fuzz Co");
      orgId = tenant.orgId;
      // Rate limits (when present) must not turn the fuzz into a stream of 429s.
      await updateOrganization(h.store.db, orgId, {
        rate_limits: { read_per_minute: 1_000_000, write_per_minute: 1_000_000 },
      });
      nativeAuth = tenant.auth;
      const a1 = await h.account(orgId);
      const a2 = await h.account(orgId);
      // A second organisation: its ids are foreign to the fuzzing tenant, and the
      // admin routes act on it (so a fuzzed revoke or limit change never hits the fuzzer's key).
      const victim = await h.tenant("Victim Co");
      const va = await h.account(victim.orgId);
      const spareKey = await createApiKey(h.store.db, victim.orgId, { label: "spare" });
      const foreign = await createContact(
        { db: h.store.db, organizationId: victim.orgId },
        await requireAccountByPhoneNumberId(h.store.db, victim.orgId, va.phoneNumberId),
        { phone_number: "+628111000999", display_name: "Foreign" },
        "api",
      );
      ctx = {
        ids: { org: [victim.orgId], wba: [va.id], key: [spareKey.row.id], foreignCtc: [foreign.id] },
        phoneNumberIds: [a1.phoneNumberId, a2.phoneNumberId, va.phoneNumberId],
      };
      await ensureContacts();
    });

    after(async () => {
      const summary = [...statuses.entries()].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`);
      console.log(`# fuzz [${kind}]: ${fuzzed} requests fuzzed (${summary.join(", ")})`);
      await h.close();
    });

    async function check(request: FuzzRequest): Promise<void> {
      const before = await storeDigest(h.store);
      const res = await withTimeout(
        h.inject({
          method: request.method as "GET",
          url: request.url,
          headers: request.headers,
          ...(request.payload === undefined ? {} : { payload: request.payload }),
        }),
        REQUEST_TIMEOUT_MS,
        `${request.method} ${request.url.slice(0, 120)}`,
      );
      fuzzed += 1;
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      const where = `${request.method} ${request.url.slice(0, 160)} [${request.mutation}] → ${res.statusCode} ${res.body.slice(0, 300)}`;
      assert.ok(res.statusCode < 500, `5xx: ${where}`);
      assert.equal(
        ({} as Record<string, unknown>).polluted,
        undefined,
        `Object.prototype polluted by ${where}`,
      );
      if (res.statusCode >= 400) {
        const problem = errorShapeProblem(request.url, res.statusCode, res.headers, res.body);
        assert.equal(problem, undefined, `${problem}: ${where}`);
        const afterDigest = await storeDigest(h.store);
        assert.equal(afterDigest, before, `a rejected request changed the store: ${where}`);
      }
      if (res.statusCode < 300 && request.method === "DELETE") await ensureContacts();
    }

    test("the route list comes from the OpenAPI document and covers every surface present", () => {
      const routes = fuzzRoutes(h.app);
      assert.ok(routes.length >= 15, `only ${routes.length} routes found`);
      assert.ok(routes.some((r) => r.template.startsWith("/admin/")));
      assert.ok(routes.some((r) => r.template.startsWith("/v1/") && r.body !== undefined));
    });

    // One subtest per route of the document, so a failure names its route.
    test("every route survives hostile requests", async (t) => {
      const routes = fuzzRoutes(h.app);
      for (const route of routes) {
        await t.test(`${route.method} ${route.template}`, async () => {
          const auth = {
            headers: route.template.startsWith("/admin/")
              ? { authorization: `Bearer ${ADMIN_TOKEN}` }
              : nativeAuth,
          };
          await fc.assert(fc.asyncProperty(requestArb(route, ctx, auth), check), {
            numRuns: RUNS_PER_ROUTE,
            seed: fuzzSeed(),
            endOnFailure: true,
          });
        });
      }
    });

    test("unknown routes and methods answer in the surface's shape", async () => {
      // A surface's own shape applies once the surface exists; until then its prefix is an unknown path.
      const present = (prefix: string) => fuzzRoutes(h.app).some((r) => r.template.startsWith(prefix));
      const urls = ["/", "/v2/contacts", "/v1/nope", "/admin/v1/nope", "/%FF", "/v1/contacts/%00/x"];
      if (present("/platform/"))
        urls.push("/platform/v1/whatsapp/nope", "/platform/v1/whatsapp/contacts/%FF");
      if (present("/meta/whatsapp/"))
        urls.push("/meta/whatsapp/v21.0/1/nope", "/meta/whatsapp/v21.0/%FF/contacts");
      for (const url of urls) {
        for (const method of ["GET", "PUT", "OPTIONS", "TRACE"] as const) {
          await check({ method, url, headers: nativeAuth, mutation: "unknown route" });
        }
      }
    });
  });
}
