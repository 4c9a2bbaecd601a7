import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { storeKinds } from "../helpers/env.ts";
import { createHarness, type Harness, type Tenant } from "../helpers/harness.ts";

// Regression (found by the fuzzer): PostgreSQL cannot hold a NUL byte in text,
// and a lookup carrying one was a 500. It is the client's error: 400 (or 404
// where a surface answers "no such contact"), never 5xx, on both stores.
for (const kind of storeKinds()) {
  describe(`NUL bytes in lookups [${kind}]`, () => {
    let h: Harness;
    let t: Tenant;
    let pnid: string;
    before(async () => {
      h = await createHarness(kind);
      t = await h.tenant();
      pnid = (await h.account(t.orgId)).phoneNumberId;
    });
    after(async () => {
      await h.close();
    });

    test("platform identifiers, graph wa_ids and filters with %00 are 4xx in the surface's shape", async () => {
      const cases = [
        { method: "GET", url: "/platform/v1/whatsapp/contacts/%00" },
        { method: "DELETE", url: "/platform/v1/whatsapp/contacts/a%00b" },
        { method: "GET", url: "/platform/v1/whatsapp/contacts?profile_name_contains=%00" },
        { method: "GET", url: "/platform/v1/whatsapp/contacts?business_scoped_user_id=x%00" },
        { method: "GET", url: `/meta/whatsapp/v21.0/${pnid}/contacts/%00` },
        { method: "GET", url: `/meta/whatsapp/v21.0/${pnid}/contacts?wa_id=%00` },
      ] as const;
      for (const c of cases) {
        const res = await h.inject({ ...c, headers: t.auth });
        assert.ok(
          res.statusCode >= 400 && res.statusCode < 500,
          `${c.method} ${c.url} → ${res.statusCode} ${res.body}`,
        );
        assert.ok(res.json().error, res.body);
      }
    });
  });
}
