import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { FastifyRequest } from "fastify";
import { sweepExpiredIdempotencyKeys } from "../../src/domain/idempotency.ts";
import { storeKinds } from "../helpers/env.ts";
import { createHarness, type Harness, type Tenant } from "../helpers/harness.ts";
import { protectedRoutes } from "../helpers/routes.ts";

const ID_RE = /^req_[0-9A-HJKMNP-TV-Z]{26}$/;
let phoneCounter = 0;
const nextPhone = () => `+6281299${String(++phoneCounter).padStart(5, "0")}`;

async function countRows(h: Harness, table: "contacts" | "idempotency_keys", orgId: string): Promise<number> {
  const row = await h.store.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .where("organization_id", "=", orgId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

for (const kind of storeKinds()) {
  describe(`idempotency keys [${kind}]`, () => {
    let h: Harness;
    /** Test-only fault injection: set per test, runs inside each write transaction just before commit. */
    let beforeCommit: ((request: FastifyRequest) => void | Promise<void>) | undefined;

    before(async () => {
      h = await createHarness(
        kind,
        {},
        { writes: { idempotencyWaitMs: 1_000, beforeCommit: (request) => beforeCommit?.(request) } },
      );
    });
    after(async () => {
      await h.close();
    });

    async function tenantWithAccount(name: string): Promise<Tenant> {
      const tenant = await h.tenant(name);
      await h.account(tenant.orgId);
      return tenant;
    }

    const post = (tenant: Tenant, key: string | undefined, payload: object, url = "/v1/contacts") =>
      h.inject({
        method: "POST",
        url,
        headers: { ...tenant.auth, ...(key === undefined ? {} : { "idempotency-key": key }) },
        payload,
      });

    test("the first request is processed; a retry replays status, body and headers without running again", async () => {
      const tenant = await tenantWithAccount("Replay Co");
      const phone = nextPhone();
      const first = await post(tenant, "order-1", { phone_number: phone, name: "Ann", metadata: { a: 1 } });
      assert.equal(first.statusCode, 201, first.body);
      assert.equal(first.headers["idempotent-replayed"], "false");
      assert.equal(first.json().request_id, first.headers["x-request-id"]);

      // Same key, same body with its keys in another order: a replay.
      const again = await post(tenant, "order-1", { metadata: { a: 1 }, name: "Ann", phone_number: phone });
      assert.equal(again.statusCode, 201, again.body);
      assert.equal(again.headers["idempotent-replayed"], "true");
      assert.equal(again.headers["original-request-id"], first.headers["x-request-id"]);
      assert.match(String(again.headers["x-request-id"]), ID_RE);
      assert.notEqual(again.headers["x-request-id"], first.headers["x-request-id"]);
      assert.equal(
        again.json().request_id,
        again.headers["x-request-id"],
        "body and header name this request",
      );
      assert.deepEqual(again.json().data, first.json().data, "the recorded contact, not a new one");
      assert.match(String(again.headers["content-type"]), /^application\/json/);
      assert.equal(await countRows(h, "contacts", tenant.orgId), 1);

      // Without the key, the same body is a new request: a conflict with the contact the key created.
      const unkeyed = await post(tenant, undefined, { phone_number: phone });
      assert.equal(unkeyed.statusCode, 409, unkeyed.body);
      assert.equal(unkeyed.headers["idempotent-replayed"], undefined);
    });

    test("the same key with another body or path is 422 idempotency_key_reuse; keys are per organisation", async () => {
      const tenant = await tenantWithAccount("Reuse Co");
      const phone = nextPhone();
      const first = await post(tenant, "k-reuse", { phone_number: phone });
      assert.equal(first.statusCode, 201, first.body);

      const otherBody = await post(tenant, "k-reuse", { phone_number: nextPhone() });
      assert.equal(otherBody.statusCode, 422, otherBody.body);
      assert.equal(otherBody.json().error.code, "idempotency_key_reuse");
      assert.equal(otherBody.json().error.param, "Idempotency-Key");

      const accountPath = await h.inject({ method: "GET", url: "/v1/accounts", headers: tenant.auth });
      const pnid = accountPath.json().data[0].phone_number_id;
      const otherPath = await post(tenant, "k-reuse", { phone_number: phone }, `/v1/${pnid}/contacts`);
      assert.equal(otherPath.statusCode, 422, otherPath.body);
      assert.equal(otherPath.json().error.code, "idempotency_key_reuse");
      assert.equal(await countRows(h, "contacts", tenant.orgId), 1);

      // Another organisation's identical key is its own.
      const other = await tenantWithAccount("Other Co");
      const theirs = await post(other, "k-reuse", { phone_number: phone });
      assert.equal(theirs.statusCode, 201, theirs.body);
      assert.equal(theirs.headers["idempotent-replayed"], "false");
      assert.notEqual(theirs.json().data.id, first.json().data.id);
    });

    test("Idempotency-Key is validated on every POST of every authenticated surface, after auth", async () => {
      const tenant = await tenantWithAccount("Keys Co");
      const posts = protectedRoutes(h.app).filter((route) => route.method === "POST");
      assert.ok(posts.length >= 2, "the POST routes are read from the OpenAPI document");
      const bad = ["", "x".repeat(256), "caf\u00e9", "tab\there"];
      for (const route of posts) {
        for (const key of bad) {
          const res = await h.inject({
            method: "POST",
            url: route.url,
            headers: { ...tenant.auth, "idempotency-key": key },
            payload: {},
          });
          assert.equal(res.statusCode, 400, `${route.url} ${JSON.stringify(key)}: ${res.body}`);
          if (route.url.startsWith("/v1/")) {
            assert.equal(res.json().error.code, "invalid_idempotency_key", res.body);
            assert.equal(res.json().error.param, "Idempotency-Key");
          }
        }
        const unauthenticated = await h.inject({
          method: "POST",
          url: route.url,
          headers: { "idempotency-key": "" },
          payload: {},
        });
        assert.equal(unauthenticated.statusCode, 401, `${route.url}: ${unauthenticated.body}`);
      }
      // The OpenAPI document declares the header on each of them.
      const document = h.app.swagger() as {
        paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string }> }>>;
      };
      for (const [path, operations] of Object.entries(document.paths)) {
        const operation = operations.post;
        if (!operation || !posts.some((p) => p.url.startsWith(path.split("{")[0]!))) continue;
        assert.ok(
          operation.parameters?.some((p) => p.in === "header" && p.name === "idempotency-key"),
          `${path} documents Idempotency-Key`,
        );
      }
      // 255 printable characters, spaces included, are fine.
      const longest = " ~".repeat(127) + "!";
      const ok = await post(tenant, longest, { phone_number: nextPhone() });
      assert.equal(ok.statusCode, 201, ok.body);
      assert.equal(ok.headers["idempotent-replayed"], "false");
    });

    test("PATCH and DELETE ignore Idempotency-Key", async () => {
      const tenant = await tenantWithAccount("Ignore Co");
      const created = await post(tenant, undefined, { phone_number: nextPhone() });
      const id = created.json().data.id;
      for (const name of ["Bea", "Cy"]) {
        const res = await h.inject({
          method: "PATCH",
          url: `/v1/contacts/${id}`,
          headers: { ...tenant.auth, "idempotency-key": "same-key-twice" },
          payload: { name },
        });
        assert.equal(res.statusCode, 200, res.body);
        assert.equal(res.json().data.name, name, "each PATCH ran");
        assert.equal(res.headers["idempotent-replayed"], undefined);
      }
      const invalidKey = await h.inject({
        method: "DELETE",
        url: `/v1/contacts/${id}`,
        headers: { ...tenant.auth, "idempotency-key": "x".repeat(300) },
      });
      assert.equal(invalidKey.statusCode, 200, invalidKey.body);
      assert.equal(await countRows(h, "idempotency_keys", tenant.orgId), 0);
    });

    test("a 4xx from the write is recorded and replayed, and the key then means that request", async () => {
      const tenant = await tenantWithAccount("Errors Co");
      const bad = await post(tenant, "bad-phone", { phone_number: "12" });
      assert.equal(bad.statusCode, 400, bad.body);
      assert.equal(bad.json().error.code, "invalid_phone_number");
      assert.equal(bad.headers["idempotent-replayed"], "false");
      const again = await post(tenant, "bad-phone", { phone_number: "12" });
      assert.equal(again.statusCode, 400, again.body);
      assert.equal(again.headers["idempotent-replayed"], "true");
      assert.equal(again.json().error.code, "invalid_phone_number");
      assert.equal(again.json().error.param, "phone_number");
      assert.equal(again.json().error.request_id, again.headers["x-request-id"]);
      assert.equal(again.headers["original-request-id"], bad.headers["x-request-id"]);
      const fixed = await post(tenant, "bad-phone", { phone_number: nextPhone() });
      assert.equal(fixed.statusCode, 422, fixed.body);
      assert.equal(fixed.json().error.code, "idempotency_key_reuse");

      // A conflict is replayed with its extra fields.
      const phone = nextPhone();
      const original = await post(tenant, undefined, { phone_number: phone });
      const conflict = await post(tenant, "dup", { phone_number: phone });
      const conflictAgain = await post(tenant, "dup", { phone_number: phone });
      assert.equal(conflict.statusCode, 409, conflict.body);
      assert.equal(conflictAgain.statusCode, 409, conflictAgain.body);
      assert.equal(conflictAgain.headers["idempotent-replayed"], "true");
      assert.equal(conflictAgain.json().error.existing_id, original.json().data.id);
    });

    test("a body failing the route's schema is recorded and replayed too; validation comes before key reuse", async () => {
      const tenant = await tenantWithAccount("Schema Co");
      const unknown = await post(tenant, "schema-1", { phone_number: nextPhone(), colour: "red" });
      assert.equal(unknown.statusCode, 400, unknown.body);
      assert.equal(unknown.json().error.code, "unknown_field");
      assert.equal(unknown.headers["idempotent-replayed"], "false");
      const again = await post(tenant, "schema-1", { colour: "blue" });
      assert.equal(again.statusCode, 400, again.body);
      assert.equal(
        again.json().error.code,
        "unknown_field",
        "a different body under the key is still a 400 first",
      );
      assert.equal(again.headers["idempotent-replayed"], "false");

      const body = { phone_number: 42 };
      const wrongType = await post(tenant, "schema-2", body);
      assert.equal(wrongType.statusCode, 400, wrongType.body);
      const replay = await post(tenant, "schema-2", body);
      assert.equal(replay.statusCode, 400, replay.body);
      assert.equal(replay.headers["idempotent-replayed"], "true");
      assert.equal(replay.headers["original-request-id"], wrongType.headers["x-request-id"]);
      assert.deepEqual(
        { ...replay.json().error, request_id: null },
        { ...wrongType.json().error, request_id: null },
      );
      assert.equal(replay.json().error.request_id, replay.headers["x-request-id"]);
      // A valid body under a key that recorded a 400 is another request.
      const reuse = await post(tenant, "schema-2", { phone_number: nextPhone() });
      assert.equal(reuse.statusCode, 422, reuse.body);
      assert.equal(await countRows(h, "contacts", tenant.orgId), 0);
      // Without a key nothing changes: a plain 400.
      const plain = await post(tenant, undefined, body);
      assert.equal(plain.statusCode, 400, plain.body);
      assert.equal(plain.headers["idempotent-replayed"], undefined);
    });

    test("a crash between the write and the response leaves neither the contact nor the key; a retry then succeeds", async () => {
      const tenant = await tenantWithAccount("Crash Co");
      const phone = nextPhone();
      let crashes = 0;
      beforeCommit = () => {
        crashes += 1;
        throw new Error("injected crash after the write, before commit");
      };
      try {
        const crashed = await post(tenant, "crash-1", { phone_number: phone, name: "Dee" });
        assert.equal(crashed.statusCode, 500, crashed.body);
        assert.equal(crashed.json().error.code, "internal_error");
        assert.ok(!crashed.body.includes("injected"), "no internal detail leaks");
        const unkeyed = await post(tenant, undefined, { phone_number: nextPhone() });
        assert.equal(unkeyed.statusCode, 500, unkeyed.body);
      } finally {
        beforeCommit = undefined;
      }
      assert.equal(crashes, 2, "the hook ran inside both writes");
      assert.equal(await countRows(h, "contacts", tenant.orgId), 0, "no contact without its key record");
      assert.equal(
        await countRows(h, "idempotency_keys", tenant.orgId),
        0,
        "no key record without its contact",
      );

      const retry = await post(tenant, "crash-1", { phone_number: phone, name: "Dee" });
      assert.equal(retry.statusCode, 201, retry.body);
      assert.equal(retry.headers["idempotent-replayed"], "false", "a 500 is not recorded");
      assert.equal(await countRows(h, "contacts", tenant.orgId), 1);
      assert.equal(await countRows(h, "idempotency_keys", tenant.orgId), 1);
    });

    test("50 concurrent POSTs with one key create exactly one contact", async () => {
      const tenant = await tenantWithAccount("Storm Co");
      const phone = nextPhone();
      const responses = await Promise.all(
        Array.from({ length: 50 }, () => post(tenant, "storm-key", { phone_number: phone, name: "Eve" })),
      );
      const fresh = responses.filter(
        (r) => r.headers["idempotent-replayed"] === "false" && r.statusCode === 201,
      );
      assert.equal(fresh.length, 1, responses.map((r) => `${r.statusCode} ${r.body}`).join("\n"));
      const id = fresh[0]!.json().data.id;
      for (const res of responses) {
        if (res.statusCode === 409) {
          assert.equal(res.json().error.code, "idempotency_in_progress", res.body);
          continue;
        }
        assert.equal(res.statusCode, 201, res.body);
        assert.equal(res.json().data.id, id);
      }
      assert.ok(responses.filter((r) => r.headers["idempotent-replayed"] === "true").length >= 1);
      assert.equal(await countRows(h, "contacts", tenant.orgId), 1);
      assert.equal(await countRows(h, "idempotency_keys", tenant.orgId), 1);
    });

    test("a duplicate waits for the request holding its key and replays it", async () => {
      const tenant = await tenantWithAccount("Wait Co");
      const phone = nextPhone();
      let release: () => void = () => {};
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      let entered: () => void = () => {};
      const holding = new Promise<void>((resolve) => {
        entered = resolve;
      });
      beforeCommit = async (request) => {
        if (request.headers["x-test-stall"] !== "1") return;
        entered();
        await released;
      };
      try {
        const first = h.inject({
          method: "POST",
          url: "/v1/contacts",
          headers: { ...tenant.auth, "idempotency-key": "slow", "x-test-stall": "1" },
          payload: { phone_number: phone },
        });
        await holding;
        if (kind === "postgres") {
          // PostgreSQL: the duplicate's claim waits on the key; past the bound (1 s here, 30 s by default) → 409.
          const impatient = await post(tenant, "slow", { phone_number: phone });
          assert.equal(impatient.statusCode, 409, impatient.body);
          assert.equal(impatient.json().error.code, "idempotency_in_progress");
        }
        const waiting = post(tenant, "slow", { phone_number: phone });
        setTimeout(release, 100);
        const [done, replay] = await Promise.all([first, waiting]);
        assert.equal(done.statusCode, 201, done.body);
        assert.equal(done.headers["idempotent-replayed"], "false");
        assert.equal(replay.statusCode, 201, replay.body);
        assert.equal(replay.headers["idempotent-replayed"], "true");
        assert.equal(replay.json().data.id, done.json().data.id);
      } finally {
        beforeCommit = undefined;
        release();
      }
      assert.equal(await countRows(h, "contacts", tenant.orgId), 1);
    });

    test("records expire after 24 hours: an expired key is processed afresh and the sweeper deletes old rows", async () => {
      const tenant = await tenantWithAccount("Expiry Co");
      const first = await post(tenant, "old-key", { phone_number: nextPhone() });
      assert.equal(first.statusCode, 201, first.body);
      const row = await h.store.db
        .selectFrom("idempotency_keys")
        .selectAll()
        .where("organization_id", "=", tenant.orgId)
        .executeTakeFirstOrThrow();
      assert.ok(row.expires_at - row.created_at >= 24 * 60 * 60 * 1000, "kept at least 24 hours");

      await h.store.db
        .updateTable("idempotency_keys")
        .set({ created_at: Date.now() - 25 * 3600_000, expires_at: Date.now() - 3600_000 })
        .where("organization_id", "=", tenant.orgId)
        .execute();
      const reused = await post(tenant, "old-key", { phone_number: nextPhone() });
      assert.equal(reused.statusCode, 201, reused.body);
      assert.equal(reused.headers["idempotent-replayed"], "false");
      assert.equal(await countRows(h, "contacts", tenant.orgId), 2);

      await post(tenant, "another-key", { phone_number: nextPhone() });
      await h.store.db
        .updateTable("idempotency_keys")
        .set({ expires_at: Date.now() - 1 })
        .where("organization_id", "=", tenant.orgId)
        .where("idempotency_key", "=", "another-key")
        .execute();
      const swept = await sweepExpiredIdempotencyKeys(h.store, Date.now(), 1);
      assert.ok(swept >= 1, `swept ${swept}`);
      const keys = await h.store.db
        .selectFrom("idempotency_keys")
        .select("idempotency_key")
        .where("organization_id", "=", tenant.orgId)
        .execute();
      assert.deepEqual(
        keys.map((k) => k.idempotency_key),
        ["old-key"],
      );
    });
  });
}
