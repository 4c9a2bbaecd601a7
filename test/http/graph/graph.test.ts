import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { GraphApiError, WhatsAppClient } from "@kapso/whatsapp-cloud-api";
import { contactIdOf, contactUuid } from "../../../src/ids.ts";
import { storeKinds } from "../../helpers/env.ts";
import { createHarness, type Harness, type Json } from "../../helpers/harness.ts";

const REQ_RE = /^req_[0-9A-HJKMNP-TV-Z]{26}$/;

/** `{ error: { message, type, code: <int>, fbtrace_id } }` */
function assertGraphError(
  res: { statusCode: number; body: string; headers: Record<string, unknown>; json(): Json },
  status: number,
  code: number,
) {
  assert.equal(res.statusCode, status, res.body);
  const body = res.json();
  assert.deepEqual(Object.keys(body), ["error"], res.body);
  assert.deepEqual(Object.keys(body.error), ["message", "type", "code", "fbtrace_id"], res.body);
  assert.equal(typeof body.error.message, "string");
  assert.equal(typeof body.error.type, "string");
  assert.equal(body.error.code, code, res.body);
  assert.match(body.error.fbtrace_id, REQ_RE);
  assert.equal(res.headers["x-request-id"], body.error.fbtrace_id);
}

for (const kind of storeKinds()) {
  describe(`graph surface and cross-surface identity [${kind}]`, () => {
    let h: Harness;
    before(async () => {
      h = await createHarness(kind);
    });
    after(async () => {
      await h.close();
    });

    async function setup(name = "Graph Co") {
      const tenant = await h.tenant(name);
      const account = await h.account(tenant.orgId);
      const key = { "x-api-key": tenant.key };
      const graph = `/meta/whatsapp/v23.0/${account.phoneNumberId}/contacts`;
      return { tenant, account, key, graph };
    }

    async function platformCreate(headers: Record<string, string>, contact: Record<string, unknown>) {
      const res = await h.inject({
        method: "POST",
        url: "/platform/v1/whatsapp/contacts",
        headers,
        payload: { contact },
      });
      assert.equal(res.statusCode, 201, res.body);
      return res.json().data as Json;
    }

    test("a contact created on one surface is the same contact on the other two", async () => {
      const { tenant, account, key, graph } = await setup();
      // Native → platform and graph.
      const native = await h.inject({
        method: "POST",
        url: `/v1/${account.phoneNumberId}/contacts`,
        headers: tenant.auth,
        payload: { phone_number: "+62 811-1111-2222", name: "Native Name", metadata: { origin: "v1" } },
      });
      assert.equal(native.statusCode, 201, native.body);
      const n = native.json().data;
      const onPlatform = await h.inject({
        method: "GET",
        url: "/platform/v1/whatsapp/contacts/6281111112222",
        headers: key,
      });
      const onGraph = await h.inject({ method: "GET", url: `${graph}/6281111112222`, headers: tenant.auth });
      assert.equal(onGraph.statusCode, 200, onGraph.body);
      assert.deepEqual(
        onPlatform.json().data,
        onGraph.json(),
        "graph returns the bare object, same as platform's data",
      );
      const g = onGraph.json();
      assert.equal(g.id, contactUuid(n.id), "the same id, in Kapso's UUID form");
      assert.equal(g.wa_id, n.wa_id);
      assert.equal(g.display_name, "Native Name");
      assert.deepEqual(g.metadata, { origin: "v1" });
      assert.equal(g.phone_number_id, account.phoneNumberId);
      // The same instants, in Kapso's six fractional digits.
      assert.equal(g.created_at, n.created_at.replace(/Z$/, "000Z"));
      assert.equal(g.updated_at, n.updated_at.replace(/Z$/, "000Z"));

      // Platform → native and graph.
      const p = await platformCreate(key, {
        wa_id: "+6281133334444",
        profile_name: "Plat",
        display_name: "Form",
      });
      const viaNative = (
        await h.inject({ method: "GET", url: `/v1/contacts/${p.id}`, headers: tenant.auth })
      ).json().data;
      assert.equal(viaNative.phone_number, "+6281133334444");
      assert.equal(viaNative.name, "Form");
      assert.equal(viaNative.profile_name, "Plat");
      assert.equal(viaNative.source, "api");
      const viaGraph = (
        await h.inject({ method: "GET", url: `${graph}/6281133334444`, headers: key })
      ).json();
      assert.deepEqual(viaGraph, p);
      // The same identity is a duplicate on every surface.
      const dupNative = await h.inject({
        method: "POST",
        url: `/v1/${account.phoneNumberId}/contacts`,
        headers: tenant.auth,
        payload: { phone_number: "+6281133334444" },
      });
      assert.equal(dupNative.statusCode, 409, dupNative.body);
      assert.equal(dupNative.json().error.existing_id, contactIdOf(p.id), "/v1 names it in its own form");

      // Graph PATCH → visible on native and platform.
      const patched = await h.inject({
        method: "PATCH",
        url: `${graph}/6281133334444`,
        headers: key,
        payload: { display_name: "Graph Name", metadata: { stage: "won" } },
      });
      assert.equal(patched.statusCode, 200, patched.body);
      assert.deepEqual(patched.json(), { success: true });
      const afterNative = (
        await h.inject({ method: "GET", url: `/v1/contacts/${p.id}`, headers: tenant.auth })
      ).json().data;
      assert.equal(afterNative.name, "Graph Name");
      assert.deepEqual(afterNative.metadata, { stage: "won" });
      const afterPlatform = (
        await h.inject({ method: "GET", url: `/platform/v1/whatsapp/contacts/${p.id}`, headers: key })
      ).json().data;
      assert.equal(afterPlatform.display_name, "Graph Name");
      assert.equal(afterPlatform.updated_at, afterNative.updated_at.replace(/Z$/, "000Z"));

      // Native delete → gone everywhere.
      await h.inject({ method: "DELETE", url: `/v1/contacts/${p.id}`, headers: tenant.auth });
      assertGraphError(
        await h.inject({ method: "GET", url: `${graph}/6281133334444`, headers: key }),
        404,
        100,
      );
      const gone = await h.inject({
        method: "GET",
        url: `/platform/v1/whatsapp/contacts/${p.id}`,
        headers: key,
      });
      assert.equal(gone.statusCode, 404);
    });

    test("list is scoped to the account, with wa_id, customer_id and has_customer; any vX.Y version", async () => {
      const { tenant, account, key, graph } = await setup("Scoped");
      const other = await h.account(tenant.orgId);
      const customerRes = await h.inject({
        method: "POST",
        url: "/platform/v1/customers",
        headers: key,
        payload: { customer: { name: "Tenant" } },
      });
      const customer = customerRes.json().data;
      const pnid = account.phoneNumberId;
      const linked = await platformCreate(key, {
        wa_id: "15550100001",
        customer_id: customer.id,
        phone_number_id: pnid,
      });
      const plain = await platformCreate(key, { wa_id: "15550100002", phone_number_id: pnid });
      await platformCreate(key, { wa_id: "15550100003", phone_number_id: other.phoneNumberId });

      const ids = async (url: string) => {
        const res = await h.inject({ method: "GET", url, headers: key });
        assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
        return res.json().data.map((c: { id: string }) => c.id);
      };
      assert.deepEqual((await ids(graph)).sort(), [linked.id, plain.id].sort());
      assert.deepEqual(await ids(`${graph}?wa_id=15550100002`), [plain.id]);
      assert.deepEqual(await ids(`${graph}?wa_id=%2B15550100002`), [plain.id]);
      assert.deepEqual(
        await ids(`${graph}?wa_id=15550100003`),
        [],
        "another account's contact is not listed",
      );
      assert.deepEqual(await ids(`${graph}?customer_id=${customer.id}`), [linked.id]);
      assert.deepEqual(await ids(`${graph}?has_customer=true`), [linked.id]);
      assert.deepEqual(await ids(`${graph}?has_customer=false&fields=kapso(contact_name)`), [plain.id]);
      for (const version of ["v1.0", "v24.0", "v123.45"]) {
        assert.equal(
          (await ids(`/meta/whatsapp/${version}/${account.phoneNumberId}/contacts`)).length,
          2,
          version,
        );
      }
      assertGraphError(
        await h.inject({
          method: "GET",
          url: `/meta/whatsapp/23.0/${account.phoneNumberId}/contacts`,
          headers: key,
        }),
        400,
        100,
      );
      assertGraphError(
        await h.inject({
          method: "GET",
          url: `/meta/whatsapp/v23/${account.phoneNumberId}/contacts`,
          headers: key,
        }),
        400,
        100,
      );
      assertGraphError(await h.inject({ method: "GET", url: `${graph}?wa_id=12`, headers: key }), 400, 100);
      assertGraphError(await h.inject({ method: "GET", url: `${graph}?limit=500`, headers: key }), 400, 100);
      assertGraphError(await h.inject({ method: "GET", url: `${graph}?colour=red`, headers: key }), 400, 100);
      // The contact of another account of the same organisation is not found through this account.
      assertGraphError(
        await h.inject({ method: "GET", url: `${graph}/15550100003`, headers: key }),
        404,
        100,
      );
    });

    test("graph paging walks forward with after and back with before", async () => {
      const { key, graph } = await setup("Graph pages");
      const created: string[] = [];
      for (let i = 0; i < 7; i++) created.push((await platformCreate(key, { wa_id: `1555030000${i}` })).id);
      const get = async (query: string) => {
        const res = await h.inject({ method: "GET", url: `${graph}?${query}`, headers: key });
        assert.equal(res.statusCode, 200, res.body);
        return res.json();
      };
      const pages: Json[] = [await get("limit=3")];
      assert.deepEqual(Object.keys(pages[0].paging), ["cursors"]);
      assert.equal(pages[0].paging.cursors.before, null);
      while (pages[pages.length - 1].paging.cursors.after) {
        pages.push(
          await get(`limit=3&after=${encodeURIComponent(pages[pages.length - 1].paging.cursors.after)}`),
        );
      }
      const forward = pages.flatMap((p) => p.data.map((c: { id: string }) => c.id));
      assert.equal(forward.length, 7);
      assert.equal(new Set(forward).size, 7);
      assert.deepEqual([...forward].sort(), [...created].sort());
      let page = pages[pages.length - 1];
      const back: string[][] = [page.data.map((c: { id: string }) => c.id)];
      while (page.paging.cursors.before) {
        page = await get(`limit=3&before=${encodeURIComponent(page.paging.cursors.before)}`);
        back.unshift(page.data.map((c: { id: string }) => c.id));
      }
      assert.deepEqual(
        back,
        pages.map((p) => p.data.map((c: { id: string }) => c.id)),
      );
    });

    test("PATCH takes a flat body and answers { success: true }; errors are Graph-shaped", async () => {
      const { tenant, key, graph } = await setup("Patch");
      const contact = await platformCreate(key, { wa_id: "15550400000", metadata: { a: 1 } });
      const ok = await h.inject({
        method: "PATCH",
        url: `${graph}/15550400000`,
        headers: tenant.auth,
        payload: { profile_name: "Alice", metadata: { b: true } },
      });
      assert.deepEqual(ok.json(), { success: true });
      const read = (await h.inject({ method: "GET", url: `${graph}/15550400000`, headers: key })).json();
      assert.equal(read.profile_name, "Alice");
      assert.deepEqual(read.metadata, { a: 1, b: true });
      assert.equal(read.id, contact.id);

      assertGraphError(
        await h.inject({ method: "PATCH", url: `${graph}/15550400000`, headers: key, payload: {} }),
        400,
        100,
      );
      assertGraphError(
        await h.inject({
          method: "PATCH",
          url: `${graph}/15550400000`,
          headers: key,
          payload: { contact: { profile_name: "x" } },
        }),
        400,
        100,
      );
      assertGraphError(
        await h.inject({
          method: "PATCH",
          url: `${graph}/15550400000`,
          headers: key,
          payload: { metadata: { nested: { too: { deep: { to: { keep: { x: { y: 1 } } } } } } } },
        }),
        400,
        100,
      );
      assertGraphError(
        await h.inject({
          method: "PATCH",
          url: `${graph}/15550400000`,
          headers: { ...key, "content-type": "application/json" },
          payload: "{bad",
        }),
        400,
        100,
      );
      assertGraphError(await h.inject({ method: "GET", url: graph }), 401, 190);
      assertGraphError(
        await h.inject({ method: "GET", url: graph, headers: { authorization: "Bearer pb_live_wrong" } }),
        401,
        190,
      );
      assertGraphError(
        await h.inject({ method: "GET", url: "/meta/whatsapp/v23.0/nowhere", headers: key }),
        404,
        2500,
      );
      // No DELETE on the graph surface (parametric paths answer an unknown method as an unknown route).
      const del = await h.inject({ method: "DELETE", url: `${graph}/15550400000`, headers: key });
      assert.equal(del.json().error.fbtrace_id, del.headers["x-request-id"]);
      assert.ok(del.statusCode === 404 || del.statusCode === 405, del.body);
      const unchanged = (await h.inject({ method: "GET", url: `${graph}/15550400000`, headers: key })).json();
      assert.equal(unchanged.updated_at, read.updated_at, "failed PATCHes wrote nothing");
    });

    test("another organisation's account and contacts are 404", async () => {
      const mine = await setup("Mine");
      const theirs = await setup("Theirs");
      await platformCreate(theirs.key, { wa_id: "15550500000" });
      for (const url of [theirs.graph, `${theirs.graph}/15550500000`]) {
        assertGraphError(await h.inject({ method: "GET", url, headers: mine.key }), 404, 100);
      }
      assertGraphError(
        await h.inject({
          method: "PATCH",
          url: `${theirs.graph}/15550500000`,
          headers: mine.key,
          payload: { profile_name: "Hijack" },
        }),
        404,
        100,
      );
      assertGraphError(
        await h.inject({ method: "GET", url: `${mine.graph}/15550500000`, headers: mine.key }),
        404,
        100,
      );
    });

    test("the real @kapso/whatsapp-cloud-api client lists, gets and updates against a running server", async () => {
      const { tenant, account, key } = await setup("SDK");
      const customer = (
        await h.inject({
          method: "POST",
          url: "/platform/v1/customers",
          headers: key,
          payload: { customer: { name: "SDK tenant", external_customer_id: "sdk-1" } },
        })
      ).json().data;
      const linked = await platformCreate(key, {
        wa_id: "56911112222",
        profile_name: "Alice",
        customer_id: customer.id,
        metadata: { source: "import" },
      });
      for (let i = 0; i < 4; i++) await platformCreate(key, { wa_id: `5691111300${i}` });

      const address = await h.app.listen({ port: 0, host: "127.0.0.1" });
      const client = new WhatsAppClient({ baseUrl: `${address}/meta/whatsapp`, kapsoApiKey: tenant.key });

      const all = await client.contacts.list({ phoneNumberId: account.phoneNumberId });
      assert.equal(all.data.length, 5);
      assert.equal(all.paging.cursors.after, null);

      const filtered = await client.contacts.list({
        phoneNumberId: account.phoneNumberId,
        customerId: customer.id,
        hasCustomer: true,
        limit: 10,
        fields: "kapso(contact_name)",
      });
      assert.deepEqual(
        filtered.data.map((c) => c.id),
        [linked.id],
      );
      assert.equal(filtered.data[0]!.waId, "56911112222");
      assert.equal(filtered.data[0]!.customerId, customer.id);
      const byWaId = await client.contacts.list({
        phoneNumberId: account.phoneNumberId,
        waId: "56911112222",
      });
      assert.deepEqual(
        byWaId.data.map((c) => c.id),
        [linked.id],
      );

      const seen: string[] = [];
      let cursor: string | null | undefined;
      do {
        const page = await client.contacts.list({
          phoneNumberId: account.phoneNumberId,
          limit: 2,
          ...(cursor ? { after: cursor } : {}),
        });
        seen.push(...page.data.map((c) => c.id));
        cursor = page.paging.cursors.after;
      } while (cursor);
      assert.equal(seen.length, 5);
      assert.equal(new Set(seen).size, 5);

      const got = await client.contacts.get({ phoneNumberId: account.phoneNumberId, waId: "56911112222" });
      assert.equal(got.id, linked.id);
      assert.equal(got.profileName, "Alice");
      assert.deepEqual(got.metadata, { source: "import" });

      const updated = await client.contacts.update({
        phoneNumberId: account.phoneNumberId,
        waId: "56911112222",
        displayName: "Alice (VIP)",
        metadata: { tier: "gold" },
      });
      assert.deepEqual(updated, { success: true });
      const again = await client.contacts.get({ phoneNumberId: account.phoneNumberId, waId: "56911112222" });
      assert.equal(again.displayName, "Alice (VIP)");
      assert.deepEqual(again.metadata, { source: "import", tier: "gold" });
      const viaNative = (
        await h.inject({ method: "GET", url: `/v1/contacts/${linked.id}`, headers: tenant.auth })
      ).json().data;
      assert.equal(viaNative.name, "Alice (VIP)");

      await assert.rejects(
        client.contacts.get({ phoneNumberId: account.phoneNumberId, waId: "56999999999" }),
        (error: unknown) => {
          assert.ok(error instanceof GraphApiError);
          assert.equal(error.httpStatus, 404);
          assert.equal(error.code, 100);
          assert.match(String(error.fbtraceId), REQ_RE);
          return true;
        },
      );
      const stranger = new WhatsAppClient({
        baseUrl: `${address}/meta/whatsapp`,
        kapsoApiKey: "pb_live_wrong",
      });
      await assert.rejects(
        stranger.contacts.list({ phoneNumberId: account.phoneNumberId }),
        (error: unknown) => {
          assert.ok(error instanceof GraphApiError);
          assert.equal(error.httpStatus, 401);
          assert.equal(error.code, 190);
          assert.ok(error.isAuthError());
          return true;
        },
      );
    });
  });
}
