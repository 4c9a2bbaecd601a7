import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { loadConfig } from "../../src/config.ts";
import { isForbiddenAddress, validateTargetUrl } from "../../src/domain/webhook-targets.ts";
import { eventBody } from "../../src/http/native/event-representation.ts";
import { signMetaPayload } from "../../src/http/webhooks/meta-delivery.ts";
import { newId } from "../../src/ids.ts";
import { WebhookWorker } from "../../src/jobs/webhook-worker.ts";
import { insertSubscription } from "../../src/store/repositories/webhooks.ts";
import { storeKinds } from "../helpers/env.ts";
import { createHarness, type Harness, type Json, type Tenant } from "../helpers/harness.ts";
import { subscriptionRow } from "../helpers/subscriptions.ts";
import { Receiver } from "../helpers/webhook-receiver.ts";

const META_SECRET = "test-app-secret-0123456789";
const FIXTURES = join(import.meta.dirname, "..", "fixtures", "meta");
const fixture = (name: string, pnid: string) =>
  readFileSync(join(FIXTURES, `${name}.json`), "utf8").replaceAll("106540352242922", pnid);

test("targets: private, loopback, link-local, metadata and mapped addresses are refused", async () => {
  for (const address of [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "::1",
    "fe80::1",
    "fd00:ec2::254",
    "::ffff:127.0.0.1",
    "::ffff:a9fe:a9fe",
    "224.0.0.1",
  ]) {
    assert.equal(isForbiddenAddress(address), true, address);
  }
  for (const address of ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"]) {
    assert.equal(isForbiddenAddress(address), false, address);
  }
  const strict = { allowHttp: false, allowPrivate: false };
  for (const url of [
    "http://93.184.216.34/x",
    "https://127.0.0.1/x",
    "https://[::1]/x",
    "https://169.254.169.254/latest/meta-data",
    "https://localhost/x",
    "https://a.localhost/x",
  ]) {
    await assert.rejects(validateTargetUrl(url, strict), (e: Json) => e.code === "invalid_field_value", url);
  }
  assert.equal(await validateTargetUrl("https://93.184.216.34/hook", strict), "https://93.184.216.34/hook");
  assert.equal(
    await validateTargetUrl("http://127.0.0.1:9/x", { allowHttp: true, allowPrivate: true }),
    "http://127.0.0.1:9/x",
  );
});

test("configuration: webhook variables parsed, bad values stop the start", () => {
  const c = loadConfig({
    WEBHOOKS_ALLOW_HTTP: "true",
    WEBHOOKS_TIMEOUT_MS: "2500",
    WEBHOOKS_RETRY_SCHEDULE_MS: "0,100,200",
    EVENTS_RETENTION_DAYS: "7",
    WEBHOOKS_CONCURRENCY: "128",
    WEBHOOKS_THREAD: "false",
  });
  assert.equal(c.webhooks.concurrency, 128);
  assert.equal(c.webhooks.thread, false);
  assert.equal(loadConfig({}).webhooks.concurrency, 64);
  assert.equal(loadConfig({}).webhooks.thread, true);
  assert.equal(c.webhooks.allowHttp, true);
  assert.equal(c.webhooks.allowPrivate, false);
  assert.equal(c.webhooks.timeoutMs, 2500);
  assert.deepEqual(c.webhooks.retryScheduleMs, [0, 100, 200]);
  assert.equal(c.webhooks.eventsRetentionDays, 7);
  assert.equal(loadConfig({}).webhooks.retryScheduleMs.length, 8);
  for (const [name, value] of [
    ["WEBHOOKS_ALLOW_PRIVATE", "maybe"],
    ["WEBHOOKS_TIMEOUT_MS", "10s"],
    ["WEBHOOKS_RETRY_SCHEDULE_MS", "0,-1"],
    ["EVENTS_RETENTION_DAYS", "0"],
    ["WEBHOOKS_CONCURRENCY", "0"],
    ["WEBHOOKS_THREAD", "sometimes"],
  ] as const) {
    assert.throws(() => loadConfig({ [name]: value }), new RegExp(name));
  }
});

for (const kind of storeKinds()) {
  describe(`webhook worker [${kind}]`, () => {
    let h: Harness;
    let t: Tenant;
    let pnid: string;
    let r: Receiver;

    before(async () => {
      // Private targets are NOT allowed: endpoints to 127.0.0.1 are written straight to the store.
      h = await createHarness(
        kind,
        { META_APP_SECRET: META_SECRET, META_VERIFY_TOKEN: "verify-token-0123" },
        { webhooks: false },
      );
      t = await h.tenant("Worker Co");
      pnid = (await h.account(t.orgId)).phoneNumberId;
      r = await new Receiver().start();
    });
    after(async () => {
      await r.close();
      await h.close();
    });

    const endpoint = async (url: string, events = ["*"]) => {
      const id = newId("whs");
      const at = Date.now();
      await insertSubscription(h.store.db, subscriptionRow(t.orgId, { id, url, events, at }));
      return id;
    };
    const deliveries = async (subscription: string) =>
      (
        await h.inject({
          method: "GET",
          url: `/v1/webhook_deliveries?subscription=${subscription}`,
          headers: t.auth,
        })
      ).json().data as Json[];
    const disable = (id: string) =>
      h.inject({
        method: "PATCH",
        url: `/v1/webhook_subscriptions/${id}`,
        headers: t.auth,
        payload: { enabled: false },
      });

    test("the API refuses a loopback endpoint; at delivery time a name resolving to loopback is refused too", async () => {
      const refused = await h.inject({
        method: "POST",
        url: "/v1/webhook_subscriptions",
        headers: t.auth,
        payload: { url: `https://127.0.0.1:${r.port}/x` },
      });
      assert.equal(refused.statusCode, 400, refused.body);
      assert.equal(refused.json().error.param, "url");
      // As if DNS had answered a public address at creation and a private one now.
      const byName = await endpoint(`http://localhost:${r.port}/rebound`);
      const byAddress = await endpoint(`http://127.0.0.1:${r.port}/literal`);
      const worker = new WebhookWorker(h.store, eventBody, { retryScheduleMs: [0], allowPrivate: false });
      await h.inject({
        method: "POST",
        url: "/v1/contacts",
        headers: t.auth,
        payload: { phone_number: "+628122000001" },
      });
      await worker.drain();
      for (const id of [byName, byAddress]) {
        const [d] = await deliveries(id);
        assert.equal(d.status, "failed");
        assert.match(d.attempts[0].error, /target refused/);
        await disable(id);
      }
      assert.equal(r.requests.length, 0, "nothing reached the receiver");
    });

    test("an endpoint failing longer than the limit is disabled and the organisation told", async () => {
      r.respond = () => ({ status: 500 });
      const id = await endpoint(`${r.url}/failing`);
      const watcher = await endpoint(`${r.url}/watcher`, ["webhook_subscription.disabled"]);
      const worker = new WebhookWorker(h.store, eventBody, {
        retryScheduleMs: [0, 0, 0],
        jitter: 0,
        allowPrivate: true,
        disableAfterMs: 0,
      });
      await h.inject({
        method: "POST",
        url: "/v1/contacts",
        headers: t.auth,
        payload: { phone_number: "+628122000002" },
      });
      r.respond = (q) => (q.path === "/watcher" ? { status: 200 } : { status: 500 });
      await worker.drain();
      await worker.drain();
      const sub = (
        await h.inject({ method: "GET", url: `/v1/webhook_subscriptions/${id}`, headers: t.auth })
      ).json().data;
      assert.equal(sub.enabled, false);
      assert.equal(sub.disabled_reason, "failing");
      assert.ok(sub.failing_since);
      const log = await deliveries(id);
      const notice = log.find((d) => d.event_type === "webhook_subscription.disabled");
      assert.equal(notice.status, "canceled");
      assert.match(notice.last_error, /disabled/);
      const told = r.received.filter((q) => q.path === "/watcher");
      assert.equal(told.length, 1);
      assert.equal(told[0]!.json.data.subscription.id, id);
      assert.equal(told[0]!.json.data.subscription.reason, "failing");
      // Re-enabling clears the state.
      const again = await h.inject({
        method: "PATCH",
        url: `/v1/webhook_subscriptions/${id}`,
        headers: t.auth,
        payload: { enabled: true },
      });
      assert.equal(again.json().data.disabled_reason, null);
      for (const sid of [id, watcher]) await disable(sid);
      r.respond = () => ({ status: 200 });
    });

    test("two workers share the work: each event delivered exactly once when the receiver answers 2xx", async () => {
      r.respond = () => ({ status: 200 });
      const id = await endpoint(`${r.url}/shared`, ["contact.created", "contact.updated"]);
      const w1 = new WebhookWorker(h.store, eventBody, { allowPrivate: true, pollMs: 10, concurrency: 8 });
      const w2 = new WebhookWorker(h.store, eventBody, { allowPrivate: true, pollMs: 10, concurrency: 8 });
      w1.start();
      w2.start();
      try {
        const ids: string[] = [];
        for (let i = 0; i < 30; i++) {
          const res = await h.inject({
            method: "POST",
            url: "/v1/contacts",
            headers: t.auth,
            payload: { phone_number: `+6281230000${String(i).padStart(2, "0")}` },
          });
          ids.push(res.json().data.id);
        }
        for (const cid of ids.slice(0, 10)) {
          await h.inject({
            method: "PATCH",
            url: `/v1/contacts/${cid}`,
            headers: t.auth,
            payload: { name: "X" },
          });
        }
        const shared = () => r.received.filter((q) => q.path === "/shared");
        await r.waitFor(() => shared().length >= 40, "40 events");
        const eventIds = shared().map((q) => q.json.id);
        assert.equal(new Set(eventIds).size, eventIds.length, "no event delivered twice");
        for (const cid of ids.slice(0, 10)) {
          const types = shared()
            .filter((q) => q.json.data.contact.id === cid)
            .map((q) => q.json.type);
          assert.deepEqual(types, ["contact.created", "contact.updated"]);
        }
      } finally {
        await w1.stop();
        await w2.stop();
      }
      await disable(id);
    });

    test("a huge response is read up to 64 KiB and 1 KiB kept", async () => {
      r.respond = () => ({ status: 200, body: "y".repeat(2 * 1024 * 1024) });
      const id = await endpoint(`${r.url}/huge`, ["contact.created"]);
      const worker = new WebhookWorker(h.store, eventBody, { allowPrivate: true });
      await h.inject({
        method: "POST",
        url: "/v1/contacts",
        headers: t.auth,
        payload: { phone_number: "+628122000003" },
      });
      await worker.drain();
      const [d] = await deliveries(id);
      assert.equal(d.status, "succeeded");
      assert.equal(d.attempts[0].response_body.length, 1024);
      await disable(id);
      r.respond = () => ({ status: 200 });
    });

    test("Meta ingestion emits: created (inbound), opted_out, identity change as contact.updated; platform surface too", async () => {
      const id = await endpoint(`${r.url}/meta`);
      const worker = new WebhookWorker(h.store, eventBody, { allowPrivate: true });
      const send = async (raw: string) => {
        const res = await h.inject({
          method: "POST",
          url: "/webhooks/whatsapp",
          headers: {
            "content-type": "application/json",
            "x-hub-signature-256": signMetaPayload(META_SECRET, raw),
          },
          payload: raw,
        });
        assert.equal(res.statusCode, 200, res.body);
      };
      await send(fixture("inbound-text", pnid));
      await send(fixture("user-preferences-stop", pnid));
      await send(fixture("system-user-changed-number", pnid));
      const platform = await h.inject({
        method: "POST",
        url: "/platform/v1/whatsapp/contacts",
        headers: { "x-api-key": t.key },
        payload: { contact: { wa_id: "628122000009", profile_name: "Kapso" } },
      });
      assert.equal(platform.statusCode, 201, platform.body);
      await worker.drain();
      const got = r.received.filter((q) => q.path === "/meta").map((q) => q.json);
      const types = got.map((e) => e.type);
      // Order is kept per contact, not across contacts.
      const created = got.find((e) => e.type === "contact.created" && e.data.contact.source === "inbound");
      assert.ok(created, types.join());
      const optedOut = got.find((e) => e.type === "contact.opted_out");
      assert.ok(optedOut, types.join());
      assert.equal(optedOut.data.contact.marketing_opt_out, true);
      const moved = got.find(
        (e) => e.type === "contact.updated" && e.data.changed_fields.includes("phone_number"),
      );
      assert.ok(moved, types.join());
      assert.equal(moved.data.contact.id, created.data.contact.id, "same contact, new identity");
      assert.equal(moved.data.contact.phone_number, "+6289876543210");
      assert.ok(
        got.some((e) => e.type === "contact.created" && e.data.contact.phone_number === "+628122000009"),
      );
      // Redelivery of the same payload changes nothing, so emits nothing.
      const before = r.received.length;
      await send(fixture("user-preferences-stop", pnid));
      await worker.drain();
      assert.equal(r.received.length, before);
      await disable(id);
    });
  });
}
