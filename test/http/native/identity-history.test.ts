import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { signMetaPayload } from "../../../src/http/webhooks/meta-delivery.ts";
import { assertError } from "../../helpers/assertions.ts";
import { storeKinds } from "../../helpers/env.ts";
import { createHarness, type Harness, type Json, type Tenant } from "../../helpers/harness.ts";

const SECRET = "test-app-secret-0123456789";
const FIXTURE_PNID = "106540352242922";
const FIXTURES = join(import.meta.dirname, "..", "..", "fixtures", "meta");

function fixture(name: string): string {
  return readFileSync(join(FIXTURES, `${name}.json`), "utf8");
}

for (const kind of storeKinds()) {
  describe(`identity history of a contact [${kind}]`, () => {
    let h: Harness;
    let t: Tenant;
    before(async () => {
      h = await createHarness(kind, { META_APP_SECRET: SECRET, META_VERIFY_TOKEN: "verify-token" });
      t = await h.tenant("History Co");
      await h.account(t.orgId, { phoneNumberId: FIXTURE_PNID });
    });
    after(async () => {
      await h.close();
    });

    const deliver = async (name: string) => {
      const body = fixture(name);
      const res = await h.inject({
        method: "POST",
        url: "/webhooks/whatsapp",
        headers: { "content-type": "application/json", "x-hub-signature-256": signMetaPayload(SECRET, body) },
        payload: body,
      });
      assert.equal(res.statusCode, 200, res.body);
    };
    const historyOf = async (url: string): Promise<Json> => {
      const res = await h.inject({ method: "GET", url, headers: t.auth });
      assert.equal(res.statusCode, 200, res.body);
      return res.json();
    };

    test("Meta's number change and user id change are listed, newest first, on both path styles", async () => {
      await deliver("inbound-text");
      await deliver("inbound-bsuid-only");
      const list = (
        await h.inject({ method: "GET", url: "/v1/contacts?search=siti", headers: t.auth })
      ).json().data;
      const siti = list[0];
      assert.ok(siti, "the inbound contact exists");
      assert.deepEqual((await historyOf(`/v1/contacts/${siti.id}/identity_history`)).data, []);

      await deliver("system-user-changed-number");
      // The same delivery again changes nothing and records nothing.
      await deliver("system-user-changed-number");
      const page = await historyOf(`/v1/contacts/${siti.id}/identity_history`);
      assert.equal(page.has_more, false);
      assert.equal(page.next_cursor, null);
      assert.equal(page.data.length, 1);
      const [change] = page.data;
      assert.match(change.id, /^idh_[0-9A-HJKMNP-TV-Z]{26}$/);
      assert.deepEqual(
        { ...change, id: undefined, changed_at: undefined },
        {
          object: "identity_change",
          id: undefined,
          kind: "user_changed_number",
          previous_phone_number: "+6281234567890",
          phone_number: "+6289876543210",
          previous_business_scoped_user_id: "ID.13491208655302741918",
          business_scoped_user_id: "ID.77700000000000000001",
          changed_at: undefined,
        },
      );
      assert.ok(!Number.isNaN(Date.parse(change.changed_at)));
      const scoped = await historyOf(`/v1/${FIXTURE_PNID}/contacts/${siti.id}/identity_history`);
      assert.deepEqual(scoped.data, page.data);

      const budi = (
        await h.inject({ method: "GET", url: "/v1/contacts?search=budi", headers: t.auth })
      ).json().data[0];
      await deliver("system-user-changed-user-id");
      const budiHistory = (await historyOf(`/v1/contacts/${budi.id}/identity_history?limit=1`)).data;
      assert.equal(budiHistory.length, 1);
      assert.equal(budiHistory[0].kind, "user_changed_user_id");
      assert.equal(budiHistory[0].previous_phone_number, null);
      assert.equal(budiHistory[0].business_scoped_user_id, "ID.99900000000000000002");
    });

    test("another organisation's contact is 404, a malformed id 400, a bad limit 400", async () => {
      const other = await h.tenant("Other Co");
      const account = await h.account(other.orgId);
      const created = await h.inject({
        method: "POST",
        url: `/v1/${account.phoneNumberId}/contacts`,
        headers: other.auth,
        payload: { phone_number: "+6281355500001" },
      });
      assert.equal(created.statusCode, 201, created.body);
      const id = created.json().data.id;
      const foreign = await h.inject({
        method: "GET",
        url: `/v1/contacts/${id}/identity_history`,
        headers: t.auth,
      });
      assertError(foreign, 404, "resource_not_found");
      const bad = await h.inject({
        method: "GET",
        url: "/v1/contacts/ctc_nope/identity_history",
        headers: t.auth,
      });
      assertError(bad, 400, "invalid_field_value");
      const limit = await h.inject({
        method: "GET",
        url: `/v1/contacts/${id}/identity_history?limit=0`,
        headers: other.auth,
      });
      assertError(limit, 400, "invalid_limit");
    });

    test("the route is in the OpenAPI document", async () => {
      const doc = (await h.inject({ method: "GET", url: "/v1/openapi.json" })).json();
      assert.ok(doc.paths["/v1/contacts/{id}/identity_history"]?.get);
      assert.ok(doc.paths["/v1/{phone_number_id}/contacts/{id}/identity_history"]?.get);
    });
  });
}
