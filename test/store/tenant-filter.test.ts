import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { storeKinds } from "../helpers/env.ts";
import { createHarness, type Harness, type Tenant } from "../helpers/harness.ts";

/**
 * Every SQL statement the store issues on PostgreSQL during a representative
 * run of the contract (native create, list, search, labels, batch, update,
 * delete, import, export; the platform and graph surfaces) is recorded at the
 * driver, and each one that touches a tenant table must filter by
 * organization_id — so that the data can be distributed by organisation
 * (docs/scaling.md, Citus). The exceptions are listed with their reasons.
 */
const TENANT_TABLES = [
  "contacts",
  "labels",
  "contact_labels",
  "customers",
  "imports",
  "import_chunks",
  "import_errors",
  "import_created",
  "idempotency_keys",
  "inbound_receipts",
];

/** Statements allowed without organization_id, and why. */
const EXCEPTIONS: Array<{ pattern: RegExp; reason: string }> = [
  { pattern: /^(begin|commit|rollback|savepoint|release|select 1$)/i, reason: "no table" },
  {
    pattern: /phonebook_migrations|information_schema|pg_catalog|pg_advisory/i,
    reason: "migrations (coordinator-local)",
  },
  { pattern: /^(create|alter|drop) /i, reason: "migrations: DDL" },
  {
    pattern: /"api_keys".*"key_hash" =/,
    reason: "authentication: the key's hash is all there is (api_keys: a reference table)",
  },
  {
    pattern: /from "accounts" where "phone_number_id" =/i,
    reason: "accounts are a reference table (Meta names only phone_number_id)",
  },
  { pattern: /"settings"/, reason: "installation settings (reference table)" },
  {
    pattern:
      /from "imports" where "status" in|"imports" set .*"lease_owner"|from "import_chunks" where "created_at" <|import_chunks" where "upload_id" (=|in)|from "import_errors"|"import_errors"|"import_created"/i,
    reason:
      "the import runner works by import id across tenants (leases); the import id names one organisation's import, and the runner's queries run per import (docs/scaling.md: multi-shard or per-organisation under Citus)",
  },
  {
    pattern: /"contact_labels"/,
    reason:
      "contact_labels has no organization_id column yet: it reaches the tenant through contact ids already scoped (docs/scaling.md: Citus needs the column)",
  },
  {
    pattern: /insert into "import_chunks"/i,
    reason:
      "import_chunks has no organization_id column yet; the upload id is the import's (docs/scaling.md: Citus needs the column)",
  },
  {
    pattern: /from "imports" where "id" = \$1$|update "imports" set "processed_rows"/i,
    reason:
      "the import runner reads and checkpoints one import by its id, which it claimed by lease (docs/scaling.md)",
  },
  {
    pattern: /delete from "idempotency_keys" where \("organization_id", "idempotency_key"\) in \(select/i,
    reason: "expiry sweep across tenants (every 10 minutes)",
  },
];

function touchesTenant(sql: string): boolean {
  return TENANT_TABLES.some((t) => new RegExp(`"${t}"|\\b${t}\\b`).test(sql));
}

if (storeKinds().includes("postgres")) {
  describe("every statement on tenant tables filters by organization_id [postgres]", () => {
    const statements: string[] = [];
    const original = pg.Client.prototype.query;
    let h: Harness;
    let t: Tenant;
    let pnid: string;

    before(async () => {
      // Patched before any connection exists: the store binds each client's query method at connect.
      (pg.Client.prototype as { query: unknown }).query = function (this: pg.Client, ...args: unknown[]) {
        const first = args[0] as string | { text?: string };
        const text = typeof first === "string" ? first : first?.text;
        if (typeof text === "string") statements.push(text.replace(/\s+/g, " ").trim());
        return (original as (...a: unknown[]) => unknown).apply(this, args);
      } as never;
      h = await createHarness("postgres", {}, { jobs: { pollMs: 50 } });
      t = await h.tenant("Filter Co");
      pnid = (await h.account(t.orgId)).phoneNumberId;
      statements.length = 0; // the app's own statements, not the seeding
    });
    after(async () => {
      (pg.Client.prototype as { query: unknown }).query = original;
      await h.close();
    });

    test("a representative contract run", async () => {
      const json = { ...t.auth, "content-type": "application/json" };
      const post = (url: string, body: unknown, extra: Record<string, string> = {}) =>
        h.inject({ method: "POST", url, headers: { ...json, ...extra }, payload: JSON.stringify(body) });
      const label = (await post("/v1/labels", { name: "vip" })).json().data;
      const created = await post(
        `/v1/${pnid}/contacts`,
        { phone_number: "+628111000111", name: "Ann", labels: [label.id] },
        { "idempotency-key": "k1" },
      );
      assert.equal(created.statusCode, 201, created.body);
      const id = created.json().data.id;
      for (const url of [
        "/v1/contacts",
        `/v1/${pnid}/contacts?search=ann`,
        `/v1/contacts?label=${label.id}`,
        "/v1/contacts?phone=%2B628111000111",
        `/v1/contacts/${id}`,
        "/v1/labels",
        "/v1/contacts/export?format=csv",
        "/platform/v1/whatsapp/contacts",
        `/meta/whatsapp/v21.0/${pnid}/contacts`,
      ]) {
        const res = await h.inject({ method: "GET", url, headers: t.auth });
        assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
      }
      const patched = await h.inject({
        method: "PATCH",
        url: `/v1/contacts/${id}`,
        headers: json,
        payload: JSON.stringify({ email: "ann@example.com" }),
      });
      assert.equal(patched.statusCode, 200, patched.body);
      const batch = await post(`/v1/${pnid}/contacts/batch`, {
        mode: "upsert",
        contacts: [{ phone_number: "+628111000112" }, { phone_number: "+628111000111", name: "Ann B" }],
      });
      assert.equal(batch.statusCode, 200, batch.body);
      const imp = await h.inject({
        method: "POST",
        url: `/v1/imports?phone_number_id=${pnid}&mode=upsert`,
        headers: { ...t.auth, "content-type": "text/csv" },
        payload: "phone_number,name\n+628111000113,Cy\n+628111000111,Ann C\n",
      });
      assert.equal(imp.statusCode, 202, imp.body);
      const deadline = Date.now() + 60_000;
      for (;;) {
        const got = await h.inject({
          method: "GET",
          url: `/v1/imports/${imp.json().data.id}`,
          headers: t.auth,
        });
        if (got.json().data.status === "completed") break;
        assert.ok(Date.now() < deadline, got.body);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const deleted = await h.inject({ method: "DELETE", url: `/v1/contacts/${id}`, headers: t.auth });
      assert.equal(deleted.statusCode, 200, deleted.body);

      const tenant = statements.filter(touchesTenant);
      assert.ok(tenant.length > 20, `recorded ${tenant.length} tenant statements`);
      const unfiltered = [
        ...new Set(
          tenant.filter(
            (sql) => !/organization_id/.test(sql) && !EXCEPTIONS.some((e) => e.pattern.test(sql)),
          ),
        ),
      ];
      assert.deepEqual(unfiltered, [], `statements without organization_id:\n${unfiltered.join("\n\n")}`);
    });
  });
}
