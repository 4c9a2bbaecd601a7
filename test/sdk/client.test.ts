import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { createServer } from "node:net";
import { after, before, describe, test } from "node:test";
import { type Contact, Phonebook, PhonebookConnectionError, PhonebookError } from "../../sdk/src/index.ts";
import { storeKinds } from "../helpers/env.ts";
import { createHarness, type Harness, type Tenant } from "../helpers/harness.ts";

/** The SDK against a real server: buildApp listening on an ephemeral port, reached with fetch. */
for (const kind of storeKinds()) {
  describe(`SDK against a server [${kind}]`, () => {
    let h: Harness;
    let t: Tenant;
    let pnid: string;
    let baseUrl: string;
    /** Every request the SDK sent (method, URL, Idempotency-Key) and whether its answer was a replay. */
    const seen: Array<{
      method: string;
      url: string;
      key: string | undefined;
      replayed: string | undefined;
    }> = [];

    /** fetch, recording each request as it went out and the answer's Idempotent-Replayed. */
    const network = async (request: Request): Promise<Response> => {
      const key = request.headers.get("idempotency-key") ?? undefined;
      const response = await fetch(request);
      const replayed = response.headers.get("idempotent-replayed") ?? undefined;
      seen.push({ method: request.method, url: request.url, key, replayed });
      return response;
    };

    before(async () => {
      h = await createHarness(kind);
      baseUrl = await h.app.listen({ port: 0, host: "127.0.0.1" });
      t = await h.tenant("SDK Co");
      pnid = (await h.account(t.orgId)).phoneNumberId;
    });
    after(async () => {
      await h.close();
    });

    const client = (options: Partial<ConstructorParameters<typeof Phonebook>[0]> = {}) =>
      new Phonebook({ apiKey: t.key, baseUrl, fetch: network, ...options });

    test("create, get, update, label, delete: typed results from the real routes", async () => {
      const pb = client();
      const me = await pb.me();
      assert.equal(me.organization.id, t.orgId);
      const [account] = await pb.accounts.list();
      assert.equal(account?.phone_number_id, pnid);

      const created = await pb.contacts.create({
        phone_number: "+62 811-1000-001",
        name: "Ana",
        metadata: { tier: "gold" },
      });
      assert.match(created.id, /^ctc_/);
      assert.equal(created.phone_number, "+628111000001");
      assert.equal((await pb.contacts.get(created.id)).name, "Ana");

      const updated = await pb.contacts.update(created.id, {
        name: "Ana B",
        metadata: { tier: null, city: "Bandung" },
      });
      assert.equal(updated.name, "Ana B");
      assert.deepEqual(updated.metadata, { city: "Bandung" });

      const label = await pb.labels.create({ name: "vip", color: "green" });
      const labelled = await pb.contacts.attachLabel(created.id, label.id);
      assert.deepEqual(
        labelled.labels.map((l) => l.id),
        [label.id],
      );
      const found = await pb.contacts.list({ label: label.id }).toArray();
      assert.deepEqual(
        found.map((c) => c.id),
        [created.id],
      );
      await pb.contacts.detachLabel(created.id, label.id);

      const deleted = await pb.contacts.delete(created.id);
      assert.deepEqual(deleted, { id: created.id, object: "contact", deleted: true });
      await assert.rejects(pb.contacts.get(created.id), (error: unknown) => {
        assert.ok(error instanceof PhonebookError);
        assert.equal(error.status, 404);
        assert.equal(error.code, "resource_not_found");
        return true;
      });
    });

    test("for await walks every page through the cursor, per account and with filters", async () => {
      const pb = client();
      const contacts = Array.from({ length: 7 }, (_, i) => ({
        phone_number: `+62812200000${i}`,
        name: `Paged ${i}`,
      }));
      const batch = await pb.contacts.batch({ mode: "create", from: pnid, contacts });
      assert.equal(batch.summary.created, 7);
      assert.ok(batch.data.every((r) => r.status === "created"));

      const ids: string[] = [];
      for await (const c of pb.contacts.list({ search: "Paged", limit: 2 })) ids.push(c.id);
      assert.equal(ids.length, 7);
      assert.equal(new Set(ids).size, 7);
      const pageRequests = seen.filter((s) => s.method === "GET" && s.url.includes("search=Paged"));
      assert.equal(pageRequests.length, 4, "7 contacts at 2 a page is 4 pages");

      const perAccount: Contact[] = [];
      for await (const c of pb.contacts.list({ phone_number_id: pnid, search: "Paged", limit: 3 })) {
        perAccount.push(c);
      }
      assert.deepEqual(
        perAccount.map((c) => c.id),
        ids,
        "the same contacts, in the same order (created_at, id descending)",
      );

      const pages = [];
      for await (const page of pb.contacts.list({ search: "Paged", limit: 5 }).pages()) pages.push(page);
      assert.deepEqual(
        pages.map((p) => [p.data.length, p.has_more]),
        [
          [5, true],
          [2, false],
        ],
      );
    });

    test("errors are PhonebookError with status, type, code, param, request_id (and existing_id)", async () => {
      const pb = client();
      const error = await pb.contacts.create({ phone_number: "+1 555" }).catch((e: unknown) => e);
      assert.ok(error instanceof PhonebookError);
      assert.equal(error.status, 400);
      assert.equal(error.type, "invalid_request_error");
      assert.equal(error.code, "invalid_phone_number");
      assert.equal(error.param, "phone_number");
      assert.match(error.request_id ?? "", /^req_/);

      const first = await pb.contacts.create({ phone_number: "+628111000077" });
      const dup = await pb.contacts.create({ phone_number: "+628111000077" }).catch((e: unknown) => e);
      assert.ok(dup instanceof PhonebookError);
      assert.equal(dup.status, 409);
      assert.equal(dup.code, "contact_exists");
      assert.equal(dup.existing_id, first.id);

      const stranger = new Phonebook({ apiKey: "pb_live_notakeyatallnotakeyatallnotakey", baseUrl });
      const unauthorised = await stranger.me().catch((e: unknown) => e);
      assert.ok(unauthorised instanceof PhonebookError);
      assert.equal(unauthorised.status, 401);
      assert.equal(unauthorised.type, "authentication_error");
      assert.equal(unauthorised.code, "invalid_api_key");
    });

    test("a POST whose answer is lost is retried with the same Idempotency-Key and replayed, not run twice", async () => {
      let attempts = 0;
      const sleeps: number[] = [];
      const pb = client({
        // The first attempt reaches the server and commits; its answer is then lost.
        fetch: async (request) => {
          attempts++;
          const response = await network(request);
          if (attempts === 1) {
            await response.body?.cancel();
            throw new TypeError("fetch failed", { cause: { code: "ECONNRESET" } });
          }
          return response;
        },
        retries: { sleep: async (ms) => void sleeps.push(ms), random: () => 0.5 },
      });
      const before = seen.length;
      const created = await pb.contacts.create({ phone_number: "+628111000088", name: "Once" });
      const posts = seen.slice(before).filter((s) => s.method === "POST");
      assert.equal(posts.length, 2);
      assert.ok(posts[0]?.key, "a key was generated");
      assert.equal(posts[1]?.key, posts[0]?.key, "the retry carries the same key");
      assert.deepEqual(
        posts.map((p) => p.replayed),
        ["false", "true"],
      );
      assert.deepEqual(sleeps, [250], "base 500 ms × 2^0 × jitter 0.5");
      const matches = await pb.contacts.list({ phone: "+628111000088" }).toArray();
      assert.deepEqual(
        matches.map((c) => c.id),
        [created.id],
      );
    });

    test("an explicit Idempotency-Key is sent as given", async () => {
      const pb = client();
      const key = `sdk-${Date.now()}`;
      const a = await pb.labels.create({ name: "once-only" }, { idempotencyKey: key });
      const b = await pb.labels.create({ name: "once-only" }, { idempotencyKey: key });
      assert.equal(a.id, b.id);
      assert.deepEqual(
        seen.filter((s) => s.key === key).map((s) => s.replayed),
        ["false", "true"],
      );
    });

    test("503 is retried for GET and POST but not for PATCH; Retry-After is honoured", async () => {
      const sleeps: number[] = [];
      let unavailable = 0;
      const flaky = (times: number) => async (request: Request) => {
        if (unavailable < times) {
          unavailable++;
          return Response.json(
            {
              error: { type: "api_error", code: "service_unavailable", message: "down", request_id: "req_x" },
            },
            { status: 503, headers: { "retry-after": "2" } },
          );
        }
        return network(request);
      };
      const pb = client({ fetch: flaky(2), retries: { sleep: async (ms) => void sleeps.push(ms) } });
      assert.equal((await pb.me()).organization.id, t.orgId);
      assert.deepEqual(sleeps, [2000, 2000]);

      const c = await client().contacts.create({ phone_number: "+628111000099" });
      unavailable = 0;
      sleeps.length = 0;
      const patcher = client({ fetch: flaky(1), retries: { sleep: async (ms) => void sleeps.push(ms) } });
      const error = await patcher.contacts.update(c.id, { name: "x" }).catch((e: unknown) => e);
      assert.ok(error instanceof PhonebookError);
      assert.equal(error.status, 503);
      assert.equal(error.retry_after, 2);
      assert.deepEqual(sleeps, [], "a PATCH is not retried after a 503");
    });

    test("network errors: bounded attempts with exponential backoff, then PhonebookConnectionError", async () => {
      const sleeps: number[] = [];
      // A port nothing listens on (taken, then released): connection refused on every attempt.
      const probe = createServer();
      await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
      const { port } = probe.address() as AddressInfo;
      await new Promise((resolve) => probe.close(resolve));
      const pb = new Phonebook({
        apiKey: t.key,
        baseUrl: `http://127.0.0.1:${port}`,
        retries: {
          maxAttempts: 4,
          baseDelayMs: 100,
          sleep: async (ms) => void sleeps.push(ms),
          random: () => 1,
        },
      });
      const error = await pb.me().catch((e: unknown) => e);
      assert.ok(error instanceof PhonebookConnectionError, String(error));
      assert.match(error.message, /4 attempt\(s\): ECONNREFUSED/);
      assert.deepEqual(sleeps, [100, 200, 400]);
    });
  });
}

describe("SDK rate limits against a server", () => {
  let h: Harness;
  let t: Tenant;
  let baseUrl: string;
  before(async () => {
    h = await createHarness("sqlite", {}, { realRateLimits: true });
    baseUrl = await h.app.listen({ port: 0, host: "127.0.0.1" });
    t = await h.tenant("Limited", { rateLimits: { read_per_minute: 2 } });
  });
  after(async () => {
    await h.close();
  });

  test("429 is retried after the server's Retry-After, up to maxAttempts, then thrown as rate_limit_exceeded", async () => {
    const sleeps: number[] = [];
    const pb = new Phonebook({
      apiKey: t.key,
      baseUrl,
      retries: { maxAttempts: 3, maxDelayMs: 60_000, sleep: async (ms) => void sleeps.push(ms) },
    });
    await pb.me();
    await pb.me();
    const error = await pb.me().catch((e: unknown) => e);
    assert.ok(error instanceof PhonebookError);
    assert.equal(error.status, 429);
    assert.equal(error.type, "rate_limit_error");
    assert.equal(error.code, "rate_limit_exceeded");
    assert.ok(error.retry_after !== undefined && error.retry_after >= 1);
    assert.equal(sleeps.length, 2, "two retries after the first 429");
    for (const ms of sleeps) assert.ok(ms >= 1000 && ms <= 30_000, `waited the Retry-After (${ms} ms)`);
  });

  test("a Retry-After longer than maxDelayMs is not waited for", async () => {
    const sleeps: number[] = [];
    const pb = new Phonebook({
      apiKey: t.key,
      baseUrl,
      retries: { maxDelayMs: 500, sleep: async (ms) => void sleeps.push(ms) },
    });
    const error = await pb.me().catch((e: unknown) => e);
    assert.ok(error instanceof PhonebookError);
    assert.equal(error.status, 429);
    assert.deepEqual(sleeps, []);
  });
});
