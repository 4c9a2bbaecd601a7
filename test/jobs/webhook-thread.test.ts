/**
 * The webhook worker in its own thread (jobs/webhook-thread.ts). On SQLite not
 * started while there is nothing to deliver, started by the first commit that
 * queues a delivery; on PostgreSQL started with the app, its listener hearing
 * other processes' deliveries. On both: wakes on commits, feeds the lag metric
 * from the thread, started again when it dies (nothing is lost: the delivery
 * is in the store), and stopped with the app. The whole delivery contract runs
 * through the thread too (test/http/outbound-webhooks.test.ts, both stores).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { WebhookThread } from "../../src/jobs/webhook-thread.ts";
import { storeKinds } from "../helpers/env.ts";
import { eventually } from "../helpers/eventually.ts";
import { createHarness, type Harness, type Json, type Tenant } from "../helpers/harness.ts";
import { Receiver, verifyStandard } from "../helpers/webhook-receiver.ts";

const TOKEN = "metrics-token-0123456789abcdef";

for (const kind of storeKinds()) {
  describe(`webhook thread [${kind}]`, () => {
    let h: Harness;
    let t: Tenant;
    let r: Receiver;
    const thread = () => {
      const worker = h.app.webhookWorker;
      assert.ok(worker instanceof WebhookThread, "the app delivers from a thread");
      return worker;
    };
    const create = async (phone: string) => {
      const res = await h.inject({
        method: "POST",
        url: "/v1/contacts",
        headers: t.auth,
        payload: { phone_number: phone, name: "Thread" },
      });
      assert.equal(res.statusCode, 201, res.body);
      return res.json().data as Json;
    };
    const receivedFor = (id: string) => r.received.filter((q) => q.json.data?.contact?.id === id);

    before(async () => {
      r = await new Receiver().start();
      h = await createHarness(kind, {
        WEBHOOKS_THREAD: "true",
        WEBHOOKS_ALLOW_HTTP: "true",
        WEBHOOKS_ALLOW_PRIVATE: "true",
        METRICS_TOKEN: TOKEN,
      });
      t = await h.tenant("Threaded");
      await h.account(t.orgId);
    });
    after(async () => {
      await h?.close();
      await r?.close();
    });

    if (kind === "sqlite") {
      test("no endpoint, no thread: writes that queue no delivery do not start it", async () => {
        await create("+628123400001");
        const events = await h.inject({ method: "GET", url: "/v1/events", headers: t.auth });
        assert.equal(events.json().data.length, 1, "the event is recorded all the same");
        assert.equal(thread().starts, 0);
        assert.equal(thread().current, undefined);
      });
    } else {
      test("started with the app; its LISTEN connection is up and reported to the app", async () => {
        assert.equal(thread().starts, 1);
        assert.ok(thread().current);
        await eventually(
          async () => thread().listening,
          (up) => up,
          "the thread's listener reported healthy",
        );
        await create("+628123400001");
      });
    }

    test("the first queued delivery starts the thread; it delivers, signed, and the lag reaches /metrics", async () => {
      const sub = await h.inject({
        method: "POST",
        url: "/v1/webhook_subscriptions",
        headers: t.auth,
        payload: { url: `${r.url}/hook`, events: ["contact.created"] },
      });
      assert.equal(sub.statusCode, 201, sub.body);
      const secret = sub.json().data.secret as string;
      const contact = await create("+628123400002");
      const [got] = await eventually(
        async () => receivedFor(contact.id),
        (list) => list.length === 1,
        "the delivery from the thread",
      );
      assert.equal(thread().starts, 1, "the thread that delivered is the first");
      assert.ok(thread().current);
      assert.equal((verifyStandard(secret, got!) as Json).type, "contact.created");
      await eventually(
        async () =>
          (await h.inject({ method: "GET", url: "/metrics", headers: { authorization: `Bearer ${TOKEN}` } }))
            .body,
        (body) => /^phonebook_webhook_delivery_lag_seconds_count(\{[^}]*\})? [1-9]/m.test(body),
        "the lag observed by the thread in the main thread's registry",
      );
      const deliveries = await h.inject({ method: "GET", url: "/v1/webhook_deliveries", headers: t.auth });
      assert.equal(deliveries.json().data[0].status, "succeeded");
    });

    test("a thread that dies is started again and delivers what was written meanwhile", async () => {
      const running = thread().current;
      assert.ok(running);
      await running.terminate();
      const contact = await create("+628123400003");
      await eventually(
        async () => receivedFor(contact.id),
        (list) => list.length === 1,
        "the delivery after the restart",
      );
      assert.equal(thread().starts, 2);
    });

    test("a stopped worker starts nothing; started again, it waits for work, then delivers", async () => {
      const worker = thread();
      await worker.stop();
      assert.equal(worker.current, undefined);
      worker.notify();
      assert.equal(worker.current, undefined, "a wake after stop starts no thread");
      worker.start();
      // SQLite: nothing pending and no event past retention, so the start leaves
      // it idle until the write; PostgreSQL: started at once.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const contact = await create("+628123400004");
      await eventually(
        async () => receivedFor(contact.id),
        (list) => list.length === 1,
        "the delivery after start",
      );
      assert.equal(worker.starts, 3);
    });
  });
}
