import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { storeKinds } from "../helpers/env.ts";
import { eventually } from "../helpers/eventually.ts";
import { createHarness, type Harness, type Json, type Tenant } from "../helpers/harness.ts";
import { Receiver, verifyPhonebook, verifyStandard } from "../helpers/webhook-receiver.ts";

for (const kind of storeKinds()) {
  describe(`outbound webhooks [${kind}]`, () => {
    let h: Harness;
    let t: Tenant;
    let pnid: string;
    const receivers: Receiver[] = [];

    before(async () => {
      h = await createHarness(
        kind,
        // On SQLite the worker runs in its thread, as in production (jobs/webhook-thread.ts).
        {
          WEBHOOKS_ALLOW_HTTP: "true",
          WEBHOOKS_ALLOW_PRIVATE: "true",
          WEBHOOKS_TIMEOUT_MS: "1000",
          WEBHOOKS_THREAD: "true",
        },
        // A short schedule (4 attempts) so retries happen within the test; no jitter.
        { webhooks: { retryScheduleMs: [0, 30, 30, 30], pollMs: 20, jitter: 0 } },
      );
      t = await h.tenant("Hooks Co");
      pnid = (await h.account(t.orgId)).phoneNumberId;
    });
    after(async () => {
      for (const r of receivers) await r.close();
      await h.close();
    });

    const receiver = async () => {
      const r = await new Receiver().start();
      receivers.push(r);
      return r;
    };
    const call = (method: "GET" | "POST" | "PATCH" | "DELETE", url: string, payload?: unknown, tenant = t) =>
      h.inject({
        method,
        url,
        headers: tenant.auth,
        ...(payload === undefined ? {} : { payload: payload as Json }),
      });
    const subscribe = async (url: string, extra: Record<string, unknown> = {}, tenant = t) => {
      const res = await call("POST", "/v1/webhook_subscriptions", { url, ...extra }, tenant);
      assert.equal(res.statusCode, 201, res.body);
      return res.json().data as Json;
    };
    const deliveries = async (query: string, tenant = t) => {
      const res = await call("GET", `/v1/webhook_deliveries?${query}`, undefined, tenant);
      assert.equal(res.statusCode, 200, res.body);
      return res.json().data as Json[];
    };
    const contact = async (phone: string, tenant = t) => {
      const res = await call("POST", "/v1/contacts", { phone_number: phone, name: "Ann" }, tenant);
      assert.equal(res.statusCode, 201, res.body);
      return res.json().data as Json;
    };

    test("subscriptions: secret shown once, CRUD, validation with the envelope, 16 at most", async () => {
      const other = await h.tenant("Limits Co");
      const sub = await subscribe(
        "http://127.0.0.1:9/hook",
        { events: ["contact.created"], description: "CRM" },
        other,
      );
      assert.match(sub.id, /^whs_[0-9A-HJKMNP-TV-Z]{26}$/);
      assert.match(sub.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
      assert.ok(Buffer.from(sub.secret.slice(6), "base64").length >= 24);
      assert.equal(sub.enabled, true);
      const got = (await call("GET", `/v1/webhook_subscriptions/${sub.id}`, undefined, other)).json().data;
      assert.equal(got.secret, undefined, "the secret is shown only at creation");
      assert.deepEqual(got.events, ["contact.created"]);
      const patched = await call(
        "PATCH",
        `/v1/webhook_subscriptions/${sub.id}`,
        { events: ["*"], enabled: false },
        other,
      );
      assert.equal(patched.statusCode, 200, patched.body);
      assert.equal(patched.json().data.status, "disabled");
      assert.equal(patched.json().data.disabled_reason, "manual");

      for (const [body, param] of [
        [{ url: "not a url" }, "url"],
        [{ url: "ftp://example.com/x" }, "url"],
        [{ url: "http://user:pw@127.0.0.1/x" }, "url"],
        [{ url: "http://127.0.0.1/x", events: ["contact.exploded"] }, "events"],
        [{ url: "http://127.0.0.1/x", events: [] }, "events"],
        [{ url: "http://127.0.0.1/x", colour: "red" }, "colour"],
      ] as const) {
        const res = await call("POST", "/v1/webhook_subscriptions", body, other);
        assert.equal(res.statusCode, 400, res.body);
        assert.equal(res.json().error.param, param, res.body);
        assert.ok(res.json().error.request_id);
      }
      for (let i = 1; i < 16; i++) await subscribe(`http://127.0.0.1:9/hook${i}`, {}, other);
      const seventeenth = await call(
        "POST",
        "/v1/webhook_subscriptions",
        { url: "http://127.0.0.1:9/x" },
        other,
      );
      assert.equal(seventeenth.statusCode, 400, seventeenth.body);
      assert.equal(seventeenth.json().error.code, "invalid_field_value");

      const page1 = (await call("GET", "/v1/webhook_subscriptions?limit=10", undefined, other)).json();
      assert.equal(page1.data.length, 10);
      const page2 = (
        await call(
          "GET",
          `/v1/webhook_subscriptions?limit=10&cursor=${encodeURIComponent(page1.next_cursor)}`,
          undefined,
          other,
        )
      ).json();
      assert.equal(page2.data.length, 6);
      assert.equal(page2.has_more, false);
      // Another organisation sees none of them.
      assert.equal((await call("GET", `/v1/webhook_subscriptions/${sub.id}`)).statusCode, 404);
      const deleted = await call("DELETE", `/v1/webhook_subscriptions/${sub.id}`, undefined, other);
      assert.equal(deleted.statusCode, 200);
      assert.equal(
        (await call("GET", `/v1/webhook_subscriptions/${sub.id}`, undefined, other)).statusCode,
        404,
      );
    });

    test("contact events arrive signed (standardwebhooks and Phonebook-Signature), small, with changed_fields", async () => {
      const r = await receiver();
      const sub = await subscribe(`${r.url}/hook`);
      const c = await contact("+628111000001");
      const patch = await call("PATCH", `/v1/contacts/${c.id}`, { name: "Ann B", email: "ann@example.com" });
      assert.equal(patch.statusCode, 200, patch.body);
      assert.equal((await call("DELETE", `/v1/contacts/${c.id}`)).statusCode, 200);
      await r.waitFor(
        () => r.events().filter((e) => e.data?.contact?.id === c.id).length >= 3,
        "three events",
      );
      const mine = r.received.filter((q) => q.json.data?.contact?.id === c.id);
      assert.deepEqual(
        mine.map((q) => q.json.type),
        ["contact.created", "contact.updated", "contact.deleted"],
      );
      for (const q of mine) {
        const verified = verifyStandard(sub.secret, q) as Json;
        assert.equal(verified.id, q.json.id);
        assert.ok(verifyPhonebook(sub.secret, q), "Phonebook-Signature verifies");
        assert.equal(q.headers["webhook-id"], q.json.id);
        assert.match(String(q.headers["phonebook-signature"]), /^t=\d+,v1=[0-9a-f]{64}$/);
        assert.ok(q.body.length < 20_000);
        assert.match(q.json.id, /^evt_/);
      }
      assert.ok(
        !verifyPhonebook(`whsec_${Buffer.alloc(32, 1).toString("base64")}`, mine[0]!),
        "a wrong key fails",
      );
      const updated = mine[1]!.json;
      assert.deepEqual([...updated.data.changed_fields].sort(), ["display_name", "email", "name"]);
      assert.equal(updated.data.contact.name, "Ann B");
      assert.equal(updated.data.contact.object, "contact");
      assert.ok(mine[0]!.json.sequence < updated.sequence && updated.sequence < mine[2]!.json.sequence);
      // A no-op update emits nothing; the events are listed for polling.
      const events = (await call("GET", `/v1/events?after=${mine[0]!.json.sequence - 1}`)).json();
      assert.deepEqual(
        events.data.filter((e: Json) => e.data.contact?.id === c.id).map((e: Json) => e.type),
        ["contact.created", "contact.updated", "contact.deleted"],
      );
      const one = await call("GET", `/v1/events/${updated.id}`);
      assert.equal(one.json().data.sequence, updated.sequence);
    });

    test("500 then 200 is retried; deliveries log shows each attempt with status, duration and body", async () => {
      const r = await receiver();
      r.respond = (_q, i) => (i === 0 ? { status: 500, body: "x".repeat(5000) } : { status: 200 });
      const sub = await subscribe(`${r.url}/retry`, { events: ["contact.created"] });
      await contact("+628111000002");
      await r.waitFor(() => r.received.length === 1, "the retried delivery");
      assert.equal(r.requests.length, 2);
      assert.equal(r.requests[0]!.json.id, r.requests[1]!.json.id, "a retry sends the same event");
      const [d] = await eventually(
        () => deliveries(`subscription=${sub.id}`),
        (list) => list[0]?.status === "succeeded",
        "succeeded",
      );
      assert.equal(d.attempt_count, 2);
      assert.deepEqual(
        d.attempts.map((a: Json) => a.status_code),
        [500, 200],
      );
      assert.equal(d.attempts[0].response_body.length, 1024, "the first 1 KiB is kept");
      assert.ok(d.attempts.every((a: Json) => Number.isInteger(a.duration_ms)));
      const failing = await deliveries(`subscription=${sub.id}&status=failed`);
      assert.equal(failing.length, 0);
    });

    test("410 stops and disables the endpoint; a 400 stops without disabling", async () => {
      const r = await receiver();
      r.respond = (q) => (q.path === "/gone" ? { status: 410 } : { status: 400 });
      const gone = await subscribe(`${r.url}/gone`, { events: ["contact.created"] });
      const bad = await subscribe(`${r.url}/bad`, { events: ["contact.created"] });
      await contact("+628111000003");
      const goneAfter = await eventually(
        async () => (await call("GET", `/v1/webhook_subscriptions/${gone.id}`)).json().data,
        (s) => s.enabled === false,
        "endpoint disabled",
      );
      assert.equal(goneAfter.disabled_reason, "gone");
      const log = await eventually(
        () => deliveries(`subscription=${gone.id}`),
        (list) => list.some((d: Json) => d.event_type === "webhook_subscription.disabled"),
        "disabled entry in the log",
      );
      assert.equal(log.find((d: Json) => d.event_type === "contact.created").status, "failed");
      const [badDelivery] = await eventually(
        () => deliveries(`subscription=${bad.id}`),
        (list) => list[0]?.status === "failed",
        "400 fails",
      );
      assert.equal(badDelivery.attempt_count, 1);
      assert.equal((await call("GET", `/v1/webhook_subscriptions/${bad.id}`)).json().data.enabled, true);
      for (const id of [gone.id, bad.id]) await call("DELETE", `/v1/webhook_subscriptions/${id}`);
    });

    test("429 with Retry-After waits at least that long; 408 is retried", async () => {
      const r = await receiver();
      r.respond = (_q, i) =>
        i === 0
          ? { status: 429, headers: { "retry-after": "1" } }
          : i === 1
            ? { status: 408 }
            : { status: 200 };
      const sub = await subscribe(`${r.url}/limited`, { events: ["contact.created"] });
      await contact("+628111000004");
      const [d] = await eventually(
        () => deliveries(`subscription=${sub.id}`),
        (list) => list[0]?.status === "succeeded",
        "delivered after 429 and 408",
      );
      assert.deepEqual(
        d.attempts.map((a: Json) => a.status_code),
        [429, 408, 200],
      );
      const first = Date.parse(d.attempts[0].started_at) + d.attempts[0].duration_ms;
      assert.ok(Date.parse(d.attempts[1].started_at) - first >= 1000 - 5, "Retry-After: 1 honoured");
      await call("DELETE", `/v1/webhook_subscriptions/${sub.id}`);
    });

    test("connection closed, slow past the timeout, redirect: each is a failed attempt, then retried", async () => {
      const r = await receiver();
      const seen = new Map<string, number>();
      r.respond = (q) => {
        const n = (seen.get(q.path) ?? 0) + 1;
        seen.set(q.path, n);
        if (n > 1 || q.path === "/elsewhere") return { status: 200 };
        if (q.path === "/close") return { close: true };
        if (q.path === "/slow") return { delayMs: 5000, status: 200 };
        return { status: 302, headers: { location: `${r.url}/elsewhere` } };
      };
      const subs = {
        close: await subscribe(`${r.url}/close`, { events: ["contact.created"] }),
        slow: await subscribe(`${r.url}/slow`, { events: ["contact.created"] }),
        redirect: await subscribe(`${r.url}/redirect`, { events: ["contact.created"] }),
      };
      await contact("+628111000005");
      for (const [name, sub] of Object.entries(subs)) {
        const [d] = await eventually(
          () => deliveries(`subscription=${sub.id}`),
          (list) => list[0]?.status === "succeeded",
          `${name} delivered on the retry`,
        );
        assert.equal(d.attempt_count, 2, name);
        const firstError = d.attempts[0].error as string;
        if (name === "slow") assert.match(firstError, /timeout/);
        if (name === "close") assert.ok(d.attempts[0].status_code === null && firstError.length > 0);
        if (name === "redirect") {
          assert.equal(d.attempts[0].status_code, 302);
          assert.match(firstError, /redirect not followed/);
        }
        await call("DELETE", `/v1/webhook_subscriptions/${sub.id}`);
      }
      assert.equal(seen.get("/elsewhere"), undefined, "the redirect was not followed");
    });

    test("receiver down: every attempt of the schedule fails, then the delivery is failed; replay re-sends it", async () => {
      const r = await receiver();
      const port = r.port;
      await r.close();
      receivers.splice(receivers.indexOf(r), 1);
      const sub = await subscribe(`http://127.0.0.1:${port}/down`, { events: ["contact.created"] });
      await contact("+628111000006");
      const [d] = await eventually(
        () => deliveries(`subscription=${sub.id}`),
        (list) => list[0]?.status === "failed",
        "failed after the schedule",
      );
      assert.equal(d.attempt_count, 4);
      assert.ok(d.attempts.every((a: Json) => a.status_code === null && /ECONNREFUSED/.test(a.error)));
      const sub2 = await subscribe(`http://127.0.0.1:${port}/down`, { events: ["contact.created"] });
      assert.ok(sub2.id);
      // The receiver comes back on the same port: a replay of the delivery reaches it.
      const back = await new Receiver().start(port);
      receivers.push(back);
      const replay = await call("POST", `/v1/webhook_deliveries/${d.id}/replay`, {}, t);
      assert.equal(replay.statusCode, 202, replay.body);
      assert.equal(replay.json().data.replay_of, d.id);
      await back.waitFor(() => back.received.some((q) => q.json.id === d.event_id), "the replayed event");
      // The endpoint replay sends the window's events again.
      const before = back.received.length;
      const windowed = await call("POST", `/v1/webhook_subscriptions/${sub.id}/replay`, {
        since: new Date(Date.now() - 60_000).toISOString(),
      });
      assert.equal(windowed.statusCode, 202, windowed.body);
      assert.ok(windowed.json().data.queued >= 1);
      await back.waitFor(() => back.received.length >= before + windowed.json().data.queued, "the window");
      for (const id of [sub.id, sub2.id]) await call("DELETE", `/v1/webhook_subscriptions/${id}`);
    });

    test("in order per contact: event N+1 waits while N retries", async () => {
      const r = await receiver();
      let failed = 0;
      // The first two attempts of the second event fail; events after it must wait.
      r.respond = (q) => {
        if (
          q.json?.data?.changed_fields?.includes("email") &&
          q.json.data.contact.email === "v1@example.com" &&
          failed < 2
        ) {
          failed++;
          return { status: 503 };
        }
        return { status: 200 };
      };
      const sub = await subscribe(`${r.url}/order`, { events: ["contact.created", "contact.updated"] });
      const a = await contact("+628111000007");
      const b = await contact("+628111000008");
      for (let i = 1; i <= 5; i++) {
        for (const c of [a, b]) {
          const res = await call("PATCH", `/v1/contacts/${c.id}`, { email: `v${i}@example.com` });
          assert.equal(res.statusCode, 200, res.body);
        }
      }
      await r.waitFor(() => r.received.length >= 12, "12 events");
      for (const c of [a, b]) {
        const seqs = r.received.filter((q) => q.json.data.contact.id === c.id).map((q) => q.json.sequence);
        assert.equal(seqs.length, 6);
        assert.deepEqual(
          seqs,
          [...seqs].sort((x, y) => x - y),
          `events of ${c.id} in order: ${JSON.stringify(r.received.map((q) => [q.json.sequence, q.json.type, q.json.data.contact.id.slice(-4), q.json.data.contact.email]))}`,
        );
      }
      assert.equal(failed, 2);
      await call("DELETE", `/v1/webhook_subscriptions/${sub.id}`);
    });

    test("rotate_secret: both secrets sign for the overlap; test sends a ping; Idempotency-Key replays create", async () => {
      const r = await receiver();
      const key = `idem-${Date.now()}`;
      const create = () =>
        h.inject({
          method: "POST",
          url: "/v1/webhook_subscriptions",
          headers: { ...t.auth, "idempotency-key": key },
          payload: { url: `${r.url}/ping`, events: ["contact.created"] },
        });
      const first = await create();
      const again = await create();
      assert.equal(first.statusCode, 201);
      assert.equal(again.headers["idempotent-replayed"], "true");
      assert.equal(again.json().data.id, first.json().data.id);
      const sub = first.json().data;
      const rotated = await call("POST", `/v1/webhook_subscriptions/${sub.id}/rotate_secret`, {});
      assert.equal(rotated.statusCode, 200, rotated.body);
      const secret = rotated.json().data.secret as string;
      assert.notEqual(secret, sub.secret);
      assert.ok(rotated.json().data.previous_secret_expires_at);
      const ping = await call("POST", `/v1/webhook_subscriptions/${sub.id}/test`, {});
      assert.equal(ping.statusCode, 202, ping.body);
      assert.equal(ping.json().data.event_type, "ping");
      await r.waitFor(() => r.events("ping").length === 1, "the ping");
      const q = r.received.find((x) => x.json.type === "ping")!;
      verifyStandard(secret, q);
      verifyStandard(sub.secret, q);
      assert.ok(verifyPhonebook(secret, q) && verifyPhonebook(sub.secret, q));
      assert.equal(String(q.headers["webhook-signature"]).split(" ").length, 2);
      await call("DELETE", `/v1/webhook_subscriptions/${sub.id}`);
    });

    test("labels, batch upsert and imports: label.added/removed, batch events, one import.completed unless asked", async () => {
      const r = await receiver();
      const plain = await subscribe(`${r.url}/plain`);
      const withImports = await subscribe(`${r.url}/imports`, {
        include_import_contacts: true,
        events: ["contact.created", "import.completed"],
      });
      const label = (await call("POST", "/v1/labels", { name: "vip" })).json().data;
      const c = await contact("+628111000009");
      const bulk = await call("POST", "/v1/contacts/bulk_label", {
        contact_ids: [c.id],
        label_id: label.id,
        operation: "attach",
      });
      assert.equal(bulk.statusCode, 200, bulk.body);
      const detach = await call("POST", "/v1/contacts/bulk_label", {
        contact_ids: [c.id],
        label_id: label.id,
        operation: "detach",
      });
      assert.equal(detach.statusCode, 200, detach.body);
      const batch = await call("POST", `/v1/${pnid}/contacts/batch`, {
        mode: "upsert",
        contacts: [
          { phone_number: "+628111000010", name: "B1" },
          { phone_number: "+628111000009", name: "Ann C" },
        ],
      });
      assert.equal(batch.statusCode, 200, batch.body);
      const csv = "phone_number,name\n+628111000011,I1\n+628111000012,I2\n";
      const imp = await h.inject({
        method: "POST",
        url: `/v1/imports?phone_number_id=${pnid}&mode=upsert`,
        headers: { ...t.auth, "content-type": "text/csv" },
        payload: csv,
      });
      assert.equal(imp.statusCode, 202, imp.body);
      await r.waitFor(
        () =>
          r.received.filter((q) => q.path === "/plain" && q.json.type === "import.completed").length === 1,
        "import.completed",
      );
      await r.waitFor(
        () =>
          r.received.filter((q) => q.path === "/imports" && q.json.type === "import.completed").length === 1,
        "import.completed with contacts",
      );
      // Events of different contacts are not ordered: the batch's update may come after import.completed.
      await r.waitFor(
        () =>
          r.received.some(
            (q) =>
              q.path === "/plain" &&
              q.json.type === "contact.updated" &&
              q.json.data.changed_fields.includes("name"),
          ),
        "batch update",
      );
      const plainTypes = r.received.filter((q) => q.path === "/plain").map((q) => q.json.type);
      assert.ok(
        plainTypes.includes("label.added") && plainTypes.includes("label.removed"),
        plainTypes.join(),
      );
      const added = r.received.find((q) => q.path === "/plain" && q.json.type === "label.added")!.json;
      assert.equal(added.data.label.name, "vip");
      assert.equal(added.data.contact.labels[0].id, label.id);
      const plainCreated = r.received
        .filter((q) => q.path === "/plain" && q.json.type === "contact.created")
        .map((q) => q.json.data.contact.phone_number);
      assert.ok(plainCreated.includes("+628111000010"), "batch created");
      assert.ok(!plainCreated.includes("+628111000011"), "no per-contact import events by default");
      // The import's contact events are not ordered against import.completed (another ordering key).
      const importCreated = () =>
        r.received
          .filter((q) => q.path === "/imports" && q.json.type === "contact.created")
          .map((q) => q.json.data.contact.phone_number);
      await r.waitFor(
        () => importCreated().includes("+628111000011") && importCreated().includes("+628111000012"),
        "the import's contact.created events",
      );
      const completed = r.received.find((q) => q.json.type === "import.completed")!.json;
      assert.equal(completed.data.import.created, 2);
      // The import.completed comes after the import's contact events (sequence order).
      const importSeqs = r.received.filter((q) => q.path === "/imports").map((q) => q.json.sequence);
      assert.equal(Math.max(...importSeqs), completed.sequence);
      for (const id of [plain.id, withImports.id]) await call("DELETE", `/v1/webhook_subscriptions/${id}`);
    });

    test("deliveries list: filters and signed cursor; events list newest first with a cursor", async () => {
      const r = await receiver();
      const sub = await subscribe(`${r.url}/list`, { events: ["contact.created"] });
      for (let i = 0; i < 5; i++) await contact(`+62811100002${i}`);
      await eventually(
        () => deliveries(`subscription=${sub.id}&status=succeeded`),
        (list) => list.length === 5,
        "five deliveries",
      );
      const page1 = (await call("GET", `/v1/webhook_deliveries?subscription=${sub.id}&limit=3`)).json();
      assert.equal(page1.data.length, 3);
      assert.ok(page1.next_cursor);
      const page2 = (
        await call(
          "GET",
          `/v1/webhook_deliveries?subscription=${sub.id}&limit=3&cursor=${encodeURIComponent(page1.next_cursor)}`,
        )
      ).json();
      assert.equal(page2.data.length, 2);
      assert.equal(page2.next_cursor, null);
      const mixed = await call(
        "GET",
        `/v1/webhook_deliveries?status=failed&limit=3&cursor=${encodeURIComponent(page1.next_cursor)}`,
      );
      assert.equal(mixed.statusCode, 400);
      assert.equal(mixed.json().error.code, "invalid_cursor");
      const byEvent = await deliveries(`event=${page1.data[0].event_id}&subscription=${sub.id}`);
      assert.equal(byEvent.length, 1);
      const byType = await deliveries(`event_type=contact.created&subscription=${sub.id}`);
      assert.equal(byType.length, 5);
      const badStatus = await call("GET", "/v1/webhook_deliveries?status=maybe");
      assert.equal(badStatus.statusCode, 400);
      const events = (await call("GET", "/v1/events?limit=2&type=contact.created")).json();
      assert.equal(events.data.length, 2);
      assert.ok(events.data[0].sequence > events.data[1].sequence);
      const more = (
        await call(
          "GET",
          `/v1/events?limit=2&type=contact.created&cursor=${encodeURIComponent(events.next_cursor)}`,
        )
      ).json();
      assert.ok(more.data[0].sequence < events.data[1].sequence);
      await call("DELETE", `/v1/webhook_subscriptions/${sub.id}`);
    });

    test("OpenAPI lists the webhook routes", async () => {
      const doc = (await h.inject({ method: "GET", url: "/v1/openapi.json" })).json();
      for (const path of [
        "/v1/webhook_subscriptions",
        "/v1/webhook_subscriptions/{id}",
        "/v1/webhook_subscriptions/{id}/rotate_secret",
        "/v1/webhook_subscriptions/{id}/test",
        "/v1/webhook_subscriptions/{id}/replay",
        "/v1/webhook_deliveries",
        "/v1/webhook_deliveries/{id}/replay",
        "/v1/events",
      ]) {
        assert.ok(doc.paths[path], path);
      }
    });
  });
}
