import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createOrganization } from "../../src/domain/organizations.ts";
import { storeKinds } from "../helpers/env.ts";
import { eventually } from "../helpers/eventually.ts";
import { createTestStore, seedOrganization, type TestStore } from "../helpers/harness.ts";
import { hasPgBouncer, type PgBouncer, startPgBouncer } from "../helpers/pgbouncer.ts";
import { type ServerProcess, startServerProcess } from "../helpers/processes.ts";
import { Receiver } from "../helpers/webhook-receiver.ts";

/**
 * Behind PgBouncer in transaction mode LISTEN is accepted but notifications
 * never reach the idle listening client: the worker's probe finds that out,
 * says so in the log, and deliveries go out by polling (docs/webhooks.md).
 */
if (storeKinds().includes("postgres") && hasPgBouncer()) {
  describe("webhook listener behind PgBouncer (pool_mode=transaction)", () => {
    let store: TestStore;
    let bouncer: PgBouncer | undefined;
    let server: ServerProcess | undefined;
    let receiver: Receiver;

    before(async () => {
      store = await createTestStore("postgres");
      await store.store.migrate();
      await createOrganization(store.store.db, { name: "Bootstrap guard" });
      bouncer = await startPgBouncer(store.env.DATABASE_URL!, { poolSize: 3 });
      receiver = await new Receiver().start();
      server = await startServerProcess({
        DATABASE_URL: bouncer.url,
        DATABASE_PREPARED_STATEMENTS: "false",
        WEBHOOKS_ALLOW_HTTP: "true",
        WEBHOOKS_ALLOW_PRIVATE: "true",
        WEBHOOKS_POLL_MS: "300",
      });
    });
    after(async () => {
      await server?.stop();
      await bouncer?.stop();
      await receiver?.close();
      await store.drop();
    });

    test("the probe finds notifications do not arrive; deliveries go out by polling", async () => {
      await eventually(
        () => Promise.resolve(server!.output()),
        (out) => out.includes("notifications unavailable"),
        "the listener's verdict",
      );
      assert.match(server!.output(), /transaction-mode pooler/);
      assert.doesNotMatch(server!.output(), /LISTEN\/NOTIFY active/);
      const org = await seedOrganization(store.store.db, {
        name: "Bouncer Co",
        phoneNumberId: "106540352242002",
        phoneNumber: "+628111222002",
      });
      const post = async (path: string, body: unknown) => {
        const res = await fetch(`${server!.url}${path}`, {
          method: "POST",
          headers: { ...org.auth, "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        const json = (await res.json()) as { data: { id: string } };
        assert.ok(res.status < 300, JSON.stringify(json));
        return json.data;
      };
      await post("/v1/webhook_subscriptions", { url: `${receiver.url}/hook`, events: ["contact.created"] });
      const contact = await post(`/v1/${org.account.phone_number_id}/contacts`, {
        phone_number: "+628111300003",
      });
      await receiver.waitFor(
        () => receiver.received.some((q) => q.json.data?.contact?.id === contact.id),
        "the event, delivered by polling",
      );
    });
  });
}
