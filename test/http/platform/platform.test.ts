import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createContact } from "../../../src/domain/contacts.ts";
import { contactIdOf, contactUuid } from "../../../src/ids.ts";
import { findAccount } from "../../../src/store/repositories/accounts.ts";
import { storeKinds } from "../../helpers/env.ts";
import { createHarness, type Harness, type Json } from "../../helpers/harness.ts";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const BASE = "/platform/v1/whatsapp";

/** `{ error: "<message>", code }`, never the native envelope. */
function assertPlatformError(
  res: { statusCode: number; body: string; json(): Json },
  status: number,
  code: string,
) {
  assert.equal(res.statusCode, status, res.body);
  const body = res.json();
  assert.equal(typeof body.error, "string", res.body);
  assert.ok(body.error.length > 0);
  assert.equal(body.code, code, res.body);
  assert.equal(body.request_id, undefined, "no native envelope fields");
}

for (const kind of storeKinds()) {
  describe(`platform surface [${kind}]`, () => {
    let h: Harness;
    before(async () => {
      h = await createHarness(kind);
    });
    after(async () => {
      await h.close();
    });

    async function setup(name = "Kapso Co") {
      const tenant = await h.tenant(name);
      const account = await h.account(tenant.orgId);
      return { tenant, account, key: { "x-api-key": tenant.key } };
    }

    async function create(headers: Record<string, string>, contact: Record<string, unknown>) {
      return h.inject({ method: "POST", url: `${BASE}/contacts`, headers, payload: { contact } });
    }

    async function createCustomer(headers: Record<string, string>, customer: Record<string, unknown>) {
      const res = await h.inject({
        method: "POST",
        url: "/platform/v1/customers",
        headers,
        payload: { customer },
      });
      assert.equal(res.statusCode, 201, res.body);
      return res.json().data as { id: string; name: string; external_customer_id: string | null };
    }

    /** Sets created_at of contacts directly, so that time filters and ties are deterministic. */
    async function setCreatedAt(ids: string[], at: (index: number) => number) {
      for (const [index, given] of ids.entries()) {
        const id = contactIdOf(given);
        await h.store.db
          .updateTable("contacts")
          .set({ created_at: at(index) })
          .where("id", "=", id)
          .execute();
      }
    }

    test("create takes the {contact} envelope, wa_id with or without +, both auth headers; duplicate → 422", async () => {
      const { tenant, account, key } = await setup();
      const res = await create(key, {
        wa_id: "15551234567",
        profile_name: "John Doe",
        display_name: "John (VIP)",
        metadata: { segment: "vip" },
      });
      assert.equal(res.statusCode, 201, res.body);
      const data = res.json().data;
      // The contact's ULID written as a UUID (Kapso's id form).
      assert.match(data.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      assert.deepEqual(Object.keys(data), [
        "id",
        "wa_id",
        "business_scoped_user_id",
        "parent_business_scoped_user_id",
        "username",
        "profile_name",
        "display_name",
        "customer_id",
        "metadata",
        "phone_number_id",
        "created_at",
        "updated_at",
      ]);
      assert.equal(data.wa_id, "15551234567");
      assert.equal(data.profile_name, "John Doe");
      assert.equal(data.display_name, "John (VIP)");
      assert.deepEqual(data.metadata, { segment: "vip" });
      assert.equal(data.customer_id, null);
      assert.equal(data.phone_number_id, account.phoneNumberId);
      // Kapso's six fractional digits.
      assert.match(data.created_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);

      const plus = await create(tenant.auth, {
        wa_id: "+1 (555) 123-9999",
        phone_number_id: account.phoneNumberId,
      });
      assert.equal(plus.statusCode, 201, plus.body);
      assert.equal(plus.json().data.wa_id, "15551239999");

      for (const wa_id of ["15551234567", "+15551234567"]) {
        const dup = await create(key, { wa_id });
        assertPlatformError(dup, 422, "contact_exists");
        assert.equal(dup.json().existing_id, data.id);
      }
      assertPlatformError(await create(key, { wa_id: "12" }), 400, "invalid_phone_number");
      assertPlatformError(await create(key, { profile_name: "x" }), 400, "missing_required_field");
      assertPlatformError(await create(key, { wa_id: "15550001111", colour: "red" }), 400, "unknown_field");
      assertPlatformError(
        await create(key, { wa_id: "15550001111", metadata: { tags: [[[[[["too deep"]]]]]] } }),
        400,
        "invalid_metadata",
      );
      assertPlatformError(
        await create(key, { wa_id: "15550001111", customer_id: "not-a-uuid" }),
        400,
        "invalid_field_value",
      );
      assertPlatformError(
        await create(key, { wa_id: "15550001111", customer_id: "00000000-0000-4000-8000-000000000000" }),
        404,
        "resource_not_found",
      );
      assertPlatformError(
        await create(key, { wa_id: "15550001111", phone_number_id: "999999999999" }),
        404,
        "resource_not_found",
      );
      const flat = await h.inject({
        method: "POST",
        url: `${BASE}/contacts`,
        headers: key,
        payload: { wa_id: "1" },
      });
      assertPlatformError(flat, 400, "missing_required_field");
      assert.match(flat.json().error, /contact/);
      // Nothing was written by the failures.
      const all = await h.inject({ method: "GET", url: `${BASE}/contacts`, headers: key });
      assert.equal(all.json().data.length, 2);
    });

    test("create without phone_number_id needs exactly one connected account", async () => {
      const tenant = await h.tenant("Two numbers");
      const key = { "x-api-key": tenant.key };
      assertPlatformError(await create(key, { wa_id: "15551234567" }), 422, "no_connected_account");
      await h.account(tenant.orgId);
      const second = await h.account(tenant.orgId);
      assertPlatformError(await create(key, { wa_id: "15551234567" }), 422, "account_required");
      const named = await create(key, { wa_id: "15551234567", phone_number_id: second.phoneNumberId });
      assert.equal(named.statusCode, 201, named.body);
      assert.equal(named.json().data.phone_number_id, second.phoneNumberId);
    });

    test("get, patch and delete by id, phone (with or without +), BSUID and parent BSUID (newest)", async () => {
      const { tenant, account, key } = await setup();
      const created = (await create(key, { wa_id: "628111111111", profile_name: "Budi" })).json().data;
      const row = (await findAccount(h.store.db, account.id))!;
      const scope = { db: h.store.db, organizationId: tenant.orgId };
      const older = await createContact(
        scope,
        row,
        {
          business_scoped_user_id: "ID.111",
          parent_business_scoped_user_id: "ID.ENT.9",
          profile_name: "Old",
        },
        "api",
      );
      const newer = await createContact(
        scope,
        row,
        {
          business_scoped_user_id: "ID.222",
          parent_business_scoped_user_id: "ID.ENT.9",
          profile_name: "New",
        },
        "api",
      );
      await setCreatedAt([older.id, newer.id], (i) => Date.now() - 10_000 + i * 1000);

      const cases: Array<[string, string]> = [
        [created.id, created.id],
        ["628111111111", created.id],
        [encodeURIComponent("+628111111111"), created.id],
        ["+628111111111", created.id],
        ["ID.111", contactUuid(older.id)],
        ["ID.222", contactUuid(newer.id)],
        ["ID.ENT.9", contactUuid(newer.id)],
      ];
      for (const [identifier, id] of cases) {
        const res = await h.inject({ method: "GET", url: `${BASE}/contacts/${identifier}`, headers: key });
        assert.equal(res.statusCode, 200, `${identifier}: ${res.body}`);
        assert.equal(res.json().data.id, id, identifier);
      }
      for (const identifier of ["628199999999", "ID.404", "ctc_01J0000000000000000000000A"]) {
        assertPlatformError(
          await h.inject({ method: "GET", url: `${BASE}/contacts/${identifier}`, headers: key }),
          404,
          "resource_not_found",
        );
      }

      const patched = await h.inject({
        method: "PATCH",
        url: `${BASE}/contacts/%2B628111111111`,
        headers: tenant.auth,
        payload: { contact: { display_name: "Budi (VIP)", metadata: { tier: "gold" } } },
      });
      assert.equal(patched.statusCode, 200, patched.body);
      assert.equal(patched.json().data.display_name, "Budi (VIP)");
      assert.equal(patched.json().data.profile_name, "Budi");
      assert.deepEqual(patched.json().data.metadata, { tier: "gold" });
      const merged = await h.inject({
        method: "PATCH",
        url: `${BASE}/contacts/${created.id}`,
        headers: key,
        payload: { contact: { metadata: { tier: null, city: "Jakarta" } } },
      });
      assert.deepEqual(merged.json().data.metadata, { city: "Jakarta" });
      const noop = await h.inject({
        method: "PATCH",
        url: `${BASE}/contacts/${created.id}`,
        headers: key,
        payload: { contact: { display_name: "Budi (VIP)" } },
      });
      assert.equal(
        noop.json().data.updated_at,
        merged.json().data.updated_at,
        "a no-op PATCH keeps updated_at",
      );
      const moved = await h.inject({
        method: "PATCH",
        url: `${BASE}/contacts/ID.ENT.9`,
        headers: key,
        payload: { contact: { wa_id: "+628111111111" } },
      });
      assertPlatformError(moved, 422, "contact_exists");
      assertPlatformError(
        await h.inject({
          method: "PATCH",
          url: `${BASE}/contacts/${created.id}`,
          headers: key,
          payload: { contact: {} },
        }),
        400,
        "missing_required_field",
      );
      assertPlatformError(
        await h.inject({
          method: "PATCH",
          url: `${BASE}/contacts/${created.id}`,
          headers: key,
          payload: { contact: { phone_number_id: account.phoneNumberId } },
        }),
        400,
        "unknown_field",
      );

      const deleted = await h.inject({ method: "DELETE", url: `${BASE}/contacts/ID.ENT.9`, headers: key });
      assert.equal(deleted.statusCode, 204, deleted.body);
      assert.equal(deleted.body, "");
      // The newest holder of the parent BSUID is gone; the older one is now the match.
      const next = await h.inject({ method: "GET", url: `${BASE}/contacts/ID.ENT.9`, headers: key });
      assert.equal(next.json().data.id, contactUuid(older.id));
      const again = await h.inject({ method: "DELETE", url: `${BASE}/contacts/${newer.id}`, headers: key });
      assertPlatformError(again, 404, "resource_not_found");
    });

    test("identifier lookups can be scoped to one account with phone_number_id", async () => {
      const tenant = await h.tenant("Multi");
      const key = { "x-api-key": tenant.key };
      const a1 = await h.account(tenant.orgId);
      const a2 = await h.account(tenant.orgId);
      const first = (await create(key, { wa_id: "15557770000", phone_number_id: a1.phoneNumberId })).json()
        .data;
      const second = (await create(key, { wa_id: "15557770000", phone_number_id: a2.phoneNumberId })).json()
        .data;
      await setCreatedAt([first.id, second.id], (i) => Date.now() - 5000 + i * 1000);
      const newest = await h.inject({ method: "GET", url: `${BASE}/contacts/15557770000`, headers: key });
      assert.equal(newest.json().data.id, second.id);
      const scoped = await h.inject({
        method: "GET",
        url: `${BASE}/contacts/15557770000?phone_number_id=${a1.phoneNumberId}`,
        headers: key,
      });
      assert.equal(scoped.json().data.id, first.id);
    });

    test("list: every filter", async () => {
      const { tenant, account, key } = await setup("Filters");
      const acme = await createCustomer(key, { name: "Acme", external_customer_id: "ext-acme" });
      const globex = await createCustomer(key, { name: "Globex", external_customer_id: "ext-globex" });
      const specs = [
        { wa_id: "15550000001", profile_name: "Alice Smith", customer_id: acme.id },
        { wa_id: "15550000002", profile_name: "alicia keys", customer_id: globex.id },
        { wa_id: "15550009993", profile_name: "Bob", customer_id: acme.id },
        { wa_id: "15550009994", profile_name: "Carol 100%_off" },
        { wa_id: "15550000005" },
      ];
      const ids: string[] = [];
      for (const spec of specs) {
        const res = await create(key, spec);
        assert.equal(res.statusCode, 201, res.body);
        ids.push(res.json().data.id);
      }
      const row = (await findAccount(h.store.db, account.id))!;
      const scope = { db: h.store.db, organizationId: tenant.orgId };
      const bsuid = await createContact(
        scope,
        row,
        { business_scoped_user_id: "ID.777", profile_name: "Ghost" },
        "api",
      );
      ids.push(contactUuid(bsuid.id));
      const base = Date.parse("2026-01-01T00:00:00.000Z");
      await setCreatedAt(ids, (i) => base + i * 60_000);

      // Another organisation's contacts never appear.
      const other = await setup("Other");
      await create(other.key, { wa_id: "15550000001", profile_name: "Alice Smith" });

      const list = async (query: string) => {
        const res = await h.inject({ method: "GET", url: `${BASE}/contacts?${query}`, headers: key });
        assert.equal(res.statusCode, 200, `${query}: ${res.body}`);
        return (res.json().data as Array<{ id: string }>).map((c) => c.id);
      };
      const pick = (...indexes: number[]) => indexes.map((i) => ids[i]!);
      assert.deepEqual(await list(""), pick(5, 4, 3, 2, 1, 0), "newest first");
      assert.deepEqual(await list(`customer_id=${acme.id}`), pick(2, 0));
      assert.deepEqual(await list(`customer_id=${acme.id.toUpperCase()}`), pick(2, 0));
      assert.deepEqual(await list("customer_external_id=ext-globex"), pick(1));
      assert.deepEqual(await list("customer_external_id=nope"), []);
      assert.deepEqual(await list("has_customer=true"), pick(2, 1, 0));
      assert.deepEqual(await list("has_customer=false"), pick(5, 4, 3));
      assert.deepEqual(await list("profile_name_contains=ALI"), pick(1, 0));
      assert.deepEqual(await list("profile_name_contains=ice%20s"), pick(0));
      assert.deepEqual(await list(`profile_name_contains=${encodeURIComponent("100%_")}`), pick(3));
      assert.deepEqual(await list("profile_name_contains=%25"), pick(3), "% is a literal, not a wildcard");
      assert.deepEqual(await list("wa_id_contains=999"), pick(3, 2));
      assert.deepEqual(await list(`wa_id_contains=${encodeURIComponent("+1555000000")}`), pick(4, 1, 0));
      assert.deepEqual(await list("business_scoped_user_id=ID.777"), pick(5));
      assert.deepEqual(await list("created_after=2026-01-01T00:02:00.000Z"), pick(5, 4, 3));
      assert.deepEqual(await list("created_before=2026-01-01T00:02:00Z"), pick(1, 0));
      assert.deepEqual(
        await list(
          "created_after=2026-01-01T00:00:00Z&created_before=2026-01-01T00:04:00Z&has_customer=true",
        ),
        pick(2, 1),
      );
      assert.deepEqual(
        await list(`phone_number_id=${account.phoneNumberId}&customer_id=${globex.id}`),
        pick(1),
      );

      for (const [query, code] of [
        ["customer_id=123", "invalid_field_value"],
        ["has_customer=yes", "invalid_field_value"],
        ["wa_id_contains=abc", "invalid_field_value"],
        ["profile_name_contains=", "invalid_field_value"],
        ["created_after=yesterday", "invalid_field_value"],
        ["colour=red", "invalid_field_value"],
        ["limit=0", "invalid_limit"],
        ["limit=101", "invalid_limit"],
        ["after=%%%", "invalid_cursor"],
        [`after=${Buffer.from('{"created_at":"x","id":"y"}').toString("base64")}`, "invalid_cursor"],
        ["phone_number_id=abc", "invalid_field_value"],
      ] as const) {
        const res = await h.inject({ method: "GET", url: `${BASE}/contacts?${query}`, headers: key });
        assertPlatformError(res, 400, code);
      }
      assertPlatformError(
        await h.inject({
          method: "GET",
          url: `${BASE}/contacts?phone_number_id=${other.account.phoneNumberId}`,
          headers: key,
        }),
        404,
        "resource_not_found",
      );
    });

    test("cursor mode: walk every page forward with after and back with before", async () => {
      const { key } = await setup("Pages");
      const ids: string[] = [];
      for (let i = 0; i < 23; i++) {
        const res = await create(key, {
          wa_id: `1555010${String(i).padStart(4, "0")}`,
          profile_name: `P${i}`,
        });
        ids.push(res.json().data.id);
      }
      // Ties on created_at are broken by id: groups of three share a millisecond.
      const base = Date.parse("2026-02-01T00:00:00.000Z");
      await setCreatedAt(ids, (i) => base + Math.floor(i / 3) * 1000);
      const expected = [...ids].sort((a, b) => {
        const ta = Math.floor(ids.indexOf(a) / 3);
        const tb = Math.floor(ids.indexOf(b) / 3);
        return tb - ta || (a < b ? 1 : -1);
      });

      const get = async (query: string) => {
        const res = await h.inject({ method: "GET", url: `${BASE}/contacts?${query}`, headers: key });
        assert.equal(res.statusCode, 200, res.body);
        return res.json();
      };
      const first = await get("limit=5");
      assert.equal(first.data.length, 5);
      assert.equal(first.paging.cursors.before, null, "nothing before the first page");
      assert.equal(first.paging.previous, null);
      assert.equal(typeof first.paging.next, "string");
      const decoded = JSON.parse(Buffer.from(first.paging.cursors.after, "base64").toString("utf8"));
      assert.deepEqual(
        decoded,
        {
          created_at: first.data[4].created_at.replace(/000Z$/, "Z"),
          id: contactIdOf(first.data[4].id),
          org: decoded.org,
        },
        "Base64 of JSON keyset values (and the organisation's tag)",
      );

      const forward: Json[] = [first];
      let page = first;
      while (page.paging.cursors.after) {
        const next = new URL(page.paging.next, "http://relative.invalid");
        assert.equal(next.pathname, `${BASE}/contacts`);
        assert.equal(next.searchParams.get("limit"), "5");
        assert.equal(next.searchParams.get("after"), page.paging.cursors.after);
        page = await get(`limit=5&after=${encodeURIComponent(page.paging.cursors.after)}`);
        forward.push(page);
        assert.ok(forward.length < 10, "the walk ends");
      }
      assert.equal(forward.length, 5);
      assert.equal(page.paging.next, null);
      assert.equal(page.data.length, 3);
      assert.deepEqual(
        forward.flatMap((p) => p.data.map((c: { id: string }) => c.id)),
        expected,
        "every contact once, in order",
      );

      const backward: Json[] = [page];
      while (page.paging.cursors.before) {
        assert.equal(
          new URL(page.paging.previous, "http://relative.invalid").searchParams.get("before"),
          page.paging.cursors.before,
        );
        page = await get(`limit=5&before=${encodeURIComponent(page.paging.cursors.before)}`);
        backward.push(page);
        assert.ok(backward.length < 10, "the walk ends");
      }
      assert.equal(page.paging.previous, null);
      assert.deepEqual(
        backward.reverse().map((p) => p.data.map((c: { id: string }) => c.id)),
        forward.map((p) => p.data.map((c: { id: string }) => c.id)),
        "walking back returns the same pages",
      );

      // A filter holds across pages, and unencoded cursors (+ read as space) still work.
      const half = await get(`limit=2&profile_name_contains=p1`);
      const rest = await get(`limit=50&profile_name_contains=p1&after=${half.paging.cursors.after}`);
      const back = await get(`limit=2&profile_name_contains=p1&before=${rest.paging.cursors.before}`);
      assert.deepEqual(back.data, half.data, "before walks back through the same filter");
      assert.equal(back.paging.cursors.before, null);
      const names = [...half.data, ...rest.data].map((c: { profile_name: string }) => c.profile_name);
      assert.deepEqual(
        names.sort(),
        ["P1", "P10", "P11", "P12", "P13", "P14", "P15", "P16", "P17", "P18", "P19"].sort(),
      );
      assertPlatformError(
        await h.inject({
          method: "GET",
          url: `${BASE}/contacts?after=${encodeURIComponent(first.paging.cursors.after)}&before=${encodeURIComponent(first.paging.cursors.after)}`,
          headers: key,
        }),
        400,
        "invalid_field_value",
      );
    });

    test("offset mode: meta, X-Total headers, Link, and the exact window error", async () => {
      const { key } = await setup("Offsets");
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        ids.push((await create(key, { wa_id: `1555020${String(i).padStart(4, "0")}` })).json().data.id);
      }
      const base = Date.parse("2026-03-01T00:00:00.000Z");
      await setCreatedAt(ids, (i) => base + i * 1000);
      const newestFirst = [...ids].reverse();

      const res = await h.inject({ method: "GET", url: `${BASE}/contacts?page=2&per_page=3`, headers: key });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.deepEqual(body.meta, { page: 2, per_page: 3, total_pages: 3, total_count: 7 });
      assert.equal(body.paging, undefined);
      assert.deepEqual(
        body.data.map((c: { id: string }) => c.id),
        newestFirst.slice(3, 6),
      );
      assert.equal(res.headers["x-total"], "7");
      assert.equal(res.headers["x-total-pages"], "3");
      assert.equal(res.headers["x-per-page"], "3");
      assert.equal(res.headers["x-page"], "2");
      const links = Object.fromEntries(
        String(res.headers.link)
          .split(", ")
          .map((part) => {
            const m = /^<([^>]+)>; rel="(\w+)"$/.exec(part);
            assert.ok(m, part);
            const url = new URL(m[1]!, "http://relative.invalid");
            return [m[2], `${url.searchParams.get("page")}/${url.searchParams.get("per_page")}`];
          }),
      );
      assert.deepEqual(links, { first: "1/3", prev: "1/3", next: "3/3", last: "3/3" });

      const last = await h.inject({ method: "GET", url: `${BASE}/contacts?page=3&per_page=3`, headers: key });
      assert.deepEqual(
        last.json().data.map((c: { id: string }) => c.id),
        newestFirst.slice(6),
      );
      assert.ok(!String(last.headers.link).includes('rel="next"'));
      const defaults = await h.inject({ method: "GET", url: `${BASE}/contacts?page=1`, headers: key });
      assert.deepEqual(defaults.json().meta, { page: 1, per_page: 20, total_pages: 1, total_count: 7 });
      const filtered = await h.inject({
        method: "GET",
        url: `${BASE}/contacts?page=1&per_page=2&wa_id_contains=15550200006`,
        headers: key,
      });
      assert.deepEqual(filtered.json().meta, { page: 1, per_page: 2, total_pages: 1, total_count: 1 });
      const beyond = await h.inject({
        method: "GET",
        url: `${BASE}/contacts?page=9&per_page=3`,
        headers: key,
      });
      assert.equal(beyond.statusCode, 200);
      assert.deepEqual(beyond.json().data, []);

      for (const [page, perPage] of [
        [51, 10],
        [60, 100],
        [50, 101],
      ] as const) {
        const query = `page=${page}&per_page=${perPage}`;
        const over = await h.inject({ method: "GET", url: `${BASE}/contacts?${query}`, headers: key });
        if (perPage > 100) {
          assertPlatformError(over, 400, "invalid_limit");
          continue;
        }
        assert.equal(over.statusCode, 400, over.body);
        assert.deepEqual(Object.keys(over.json()), [
          "message",
          "detail",
          "requested_page",
          "requested_per_page",
          "requested_window",
          "max_page",
          "max_window",
          "cursor_example",
        ]);
        const b = over.json();
        assert.equal(b.message, "legacy_offset_pagination_limit_exceeded");
        assert.equal(typeof b.detail, "string");
        assert.equal(b.requested_page, page);
        assert.equal(b.requested_per_page, perPage);
        assert.equal(b.requested_window, page * perPage);
        assert.equal(b.max_page, 50);
        assert.equal(b.max_window, 5000);
        assert.match(b.cursor_example, /after=/);
      }
      const edge = await h.inject({
        method: "GET",
        url: `${BASE}/contacts?page=50&per_page=100`,
        headers: key,
      });
      assert.equal(edge.statusCode, 200, "a window of exactly 5,000 is allowed");
      assertPlatformError(
        await h.inject({ method: "GET", url: `${BASE}/contacts?page=0`, headers: key }),
        400,
        "invalid_field_value",
      );
      assertPlatformError(
        await h.inject({ method: "GET", url: `${BASE}/contacts?page=1&limit=5`, headers: key }),
        400,
        "invalid_field_value",
      );
    });

    test("customers: CRUD with UUID ids, 422 on a taken external id, contacts link and unlink", async () => {
      const { key, tenant } = await setup("Customers");
      const acme = await createCustomer(key, { name: "Acme", external_customer_id: "CUS-1" });
      assert.match(acme.id, UUID_RE);
      assert.equal(acme.external_customer_id, "CUS-1");
      const plain = await createCustomer(tenant.auth, { name: "No external id" });
      assert.equal(plain.external_customer_id, null);
      await createCustomer(key, { name: "Also none" });

      const dup = await h.inject({
        method: "POST",
        url: "/platform/v1/customers",
        headers: key,
        payload: { customer: { name: "Again", external_customer_id: "CUS-1" } },
      });
      assertPlatformError(dup, 422, "customer_exists");
      assert.equal(dup.json().existing_id, acme.id);
      assertPlatformError(
        await h.inject({
          method: "POST",
          url: "/platform/v1/customers",
          headers: key,
          payload: { customer: {} },
        }),
        400,
        "missing_required_field",
      );

      const fetched = await h.inject({
        method: "GET",
        url: `/platform/v1/customers/${acme.id}`,
        headers: key,
      });
      assert.deepEqual(fetched.json().data, acme);
      const alias = await h.inject({ method: "GET", url: `${BASE}/customers/${acme.id}`, headers: key });
      assert.deepEqual(alias.json().data, acme);
      assertPlatformError(
        await h.inject({ method: "GET", url: "/platform/v1/customers/nope", headers: key }),
        400,
        "invalid_field_value",
      );
      assertPlatformError(
        await h.inject({
          method: "GET",
          url: "/platform/v1/customers/00000000-0000-4000-8000-000000000000",
          headers: key,
        }),
        404,
        "resource_not_found",
      );

      const renamed = await h.inject({
        method: "PATCH",
        url: `/platform/v1/customers/${acme.id}`,
        headers: key,
        payload: { customer: { name: "Acme Corp" } },
      });
      assert.equal(renamed.json().data.name, "Acme Corp");
      assertPlatformError(
        await h.inject({
          method: "PATCH",
          url: `/platform/v1/customers/${plain.id}`,
          headers: key,
          payload: { customer: { external_customer_id: "CUS-1" } },
        }),
        422,
        "customer_exists",
      );

      const list = await h.inject({ method: "GET", url: "/platform/v1/customers?limit=2", headers: key });
      assert.equal(list.json().data.length, 2);
      const rest = await h.inject({
        method: "GET",
        url: `/platform/v1/customers?limit=2&after=${encodeURIComponent(list.json().paging.cursors.after)}`,
        headers: key,
      });
      assert.equal(rest.json().data.length, 1);
      assert.equal(rest.json().paging.cursors.after, null);
      const byExternal = await h.inject({
        method: "GET",
        url: "/platform/v1/customers?external_customer_id=CUS-1",
        headers: key,
      });
      assert.deepEqual(
        byExternal.json().data.map((c: { id: string }) => c.id),
        [acme.id],
      );

      const linked = (await create(key, { wa_id: "15553330000", customer_id: acme.id.toUpperCase() })).json()
        .data;
      assert.equal(linked.customer_id, acme.id);
      const relinked = await h.inject({
        method: "PATCH",
        url: `${BASE}/contacts/${linked.id}`,
        headers: key,
        payload: { contact: { customer_id: plain.id } },
      });
      assert.equal(relinked.json().data.customer_id, plain.id);
      const unlinked = await h.inject({
        method: "PATCH",
        url: `${BASE}/contacts/${linked.id}`,
        headers: key,
        payload: { contact: { customer_id: null } },
      });
      assert.equal(unlinked.json().data.customer_id, null);
      await h.inject({
        method: "PATCH",
        url: `${BASE}/contacts/${linked.id}`,
        headers: key,
        payload: { contact: { customer_id: acme.id } },
      });
      const before = (
        await h.inject({ method: "GET", url: `${BASE}/contacts/${linked.id}`, headers: key })
      ).json().data;

      const deleted = await h.inject({
        method: "DELETE",
        url: `/platform/v1/customers/${acme.id}`,
        headers: key,
      });
      assert.equal(deleted.statusCode, 204, deleted.body);
      const after = (
        await h.inject({ method: "GET", url: `${BASE}/contacts/${linked.id}`, headers: key })
      ).json().data;
      assert.equal(after.customer_id, null, "the contact stays, unlinked");
      assert.ok(after.updated_at > before.updated_at, "unlinking moves updated_at");
      assertPlatformError(
        await h.inject({ method: "DELETE", url: `/platform/v1/customers/${acme.id}`, headers: key }),
        404,
        "resource_not_found",
      );
    });

    test("another organisation's contacts, customers and accounts are 404", async () => {
      const mine = await setup("Mine");
      const theirs = await setup("Theirs");
      const contact = (await create(theirs.key, { wa_id: "15554440000" })).json().data;
      const customer = await createCustomer(theirs.key, { name: "Theirs", external_customer_id: "T-1" });
      for (const [method, url] of [
        ["GET", `${BASE}/contacts/${contact.id}`],
        ["GET", `${BASE}/contacts/15554440000`],
        ["DELETE", `${BASE}/contacts/${contact.id}`],
        ["GET", `/platform/v1/customers/${customer.id}`],
        ["DELETE", `/platform/v1/customers/${customer.id}`],
      ] as const) {
        assertPlatformError(await h.inject({ method, url, headers: mine.key }), 404, "resource_not_found");
      }
      assertPlatformError(
        await h.inject({
          method: "PATCH",
          url: `${BASE}/contacts/${contact.id}`,
          headers: mine.key,
          payload: { contact: { profile_name: "Hijack" } },
        }),
        404,
        "resource_not_found",
      );
      assertPlatformError(
        await create(mine.key, { wa_id: "15554440001", customer_id: customer.id }),
        404,
        "resource_not_found",
      );
      assertPlatformError(
        await create(mine.key, { wa_id: "15554440001", phone_number_id: theirs.account.phoneNumberId }),
        404,
        "resource_not_found",
      );
      const filtered = await h.inject({
        method: "GET",
        url: `${BASE}/contacts?customer_external_id=T-1`,
        headers: mine.key,
      });
      assert.deepEqual(filtered.json().data, []);
      const still = await h.inject({
        method: "GET",
        url: `${BASE}/contacts/${contact.id}`,
        headers: theirs.key,
      });
      assert.equal(still.json().data.profile_name, null, "nothing changed");
    });

    test("errors keep the platform shape: auth, unknown routes, wrong methods, bad JSON", async () => {
      const { key } = await setup("Errors");
      assertPlatformError(await h.inject({ method: "GET", url: `${BASE}/contacts` }), 401, "missing_api_key");
      assertPlatformError(
        await h.inject({ method: "GET", url: `${BASE}/contacts`, headers: { "x-api-key": "pb_live_nope" } }),
        401,
        "invalid_api_key",
      );
      assertPlatformError(
        await h.inject({ method: "GET", url: "/platform/v1/nowhere", headers: key }),
        404,
        "route_not_found",
      );
      const wrong = await h.inject({ method: "PUT", url: `${BASE}/contacts`, headers: key });
      assertPlatformError(wrong, 405, "method_not_allowed");
      const badJson = await h.inject({
        method: "POST",
        url: `${BASE}/contacts`,
        headers: { ...key, "content-type": "application/json" },
        payload: '{"contact": ',
      });
      assertPlatformError(badJson, 400, "invalid_json");
      const text = await h.inject({
        method: "POST",
        url: "/platform/v1/customers",
        headers: { ...key, "content-type": "text/plain" },
        payload: "x",
      });
      assertPlatformError(text, 415, "unsupported_media_type");
    });
  });
}
