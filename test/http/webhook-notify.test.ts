import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "kysely";
import { createOrganization } from "../../src/domain/organizations.ts";
import { storeKinds } from "../helpers/env.ts";
import { eventually } from "../helpers/eventually.ts";
import { createTestStore, seedOrganization, type TestStore } from "../helpers/harness.ts";
import { type ServerProcess, startServerProcess } from "../helpers/processes.ts";
import { Receiver } from "../helpers/webhook-receiver.ts";

/**
 * Cross-process wake-up on PostgreSQL (LISTEN/NOTIFY, docs/webhooks.md): two
 * real server processes on one database, A writing (its worker off) and B
 * delivering with a poll of 10 minutes, so only a notification can make B
 * start a delivery within the test's deadline. Then B's listening connection
 * is killed: B reconnects and deliveries start promptly again.
 */
if (storeKinds().includes("postgres")) {
  describe("webhook deliveries start at once in another process (PostgreSQL LISTEN/NOTIFY)", () => {
    let store: TestStore;
    let writer: ServerProcess;
    let deliverer: ServerProcess;
    let receiver: Receiver;
    let auth: { authorization: string };
    let pnid: string;
    const common = { WEBHOOKS_ALLOW_HTTP: "true", WEBHOOKS_ALLOW_PRIVATE: "true" };

    before(async () => {
      store = await createTestStore("postgres");
      await store.store.migrate();
      await createOrganization(store.store.db, { name: "Bootstrap guard" });
      const org = await seedOrganization(store.store.db, {
        name: "Notify Co",
        phoneNumberId: "106540352242001",
        phoneNumber: "+628111222001",
      });
      auth = org.auth;
      pnid = org.account.phone_number_id;
      receiver = await new Receiver().start();
      [writer, deliverer] = await Promise.all([
        startServerProcess({ ...store.env, ...common, WEBHOOKS_WORKER: "false" }),
        startServerProcess({ ...store.env, ...common, WEBHOOKS_POLL_MS: "600000" }),
      ]);
    });
    after(async () => {
      await Promise.all([writer?.stop(), deliverer?.stop()]);
      await receiver?.close();
      await store.drop();
    });

    const listenerPids = async (): Promise<number[]> => {
      const { rows } = await sql<{ pid: number }>`
        SELECT pid FROM pg_stat_activity
        WHERE application_name = 'phonebook-webhook-listener' AND datname = current_database()`.execute(
        store.store.db,
      );
      return rows.map((r) => r.pid);
    };
    const post = async (path: string, body: unknown) => {
      const res = await fetch(`${writer.url}${path}`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const json = (await res.json()) as { data: { id: string } };
      assert.ok(res.status < 300, JSON.stringify(json));
      return json.data;
    };
    const deliveredFor = (contactId: string) =>
      receiver.waitFor(
        () => receiver.received.some((q) => q.json.data?.contact?.id === contactId),
        `the event of ${contactId}, delivered by the other process long before its 10-minute poll`,
      );

    test("a write in one process is delivered by the other at once; after its listener is killed, again", async () => {
      // Both processes listen: the writer's worker is off, so it has no listener.
      await eventually(listenerPids, (pids) => pids.length === 1, "the deliverer's listener");
      await eventually(
        () => Promise.resolve(deliverer.output()),
        (out) => out.includes("LISTEN/NOTIFY active"),
        "the deliverer's probe came back",
      );
      await post("/v1/webhook_subscriptions", { url: `${receiver.url}/hook`, events: ["contact.created"] });
      const first = await post(`/v1/${pnid}/contacts`, { phone_number: "+628111300001" });
      await deliveredFor(first.id);

      const [killed] = await listenerPids();
      await sql`SELECT pg_terminate_backend(${killed})`.execute(store.store.db);
      await eventually(
        listenerPids,
        (pids) => pids.length === 1 && pids[0] !== killed,
        "a new listening connection",
      );
      await eventually(
        () => Promise.resolve(deliverer.output()),
        (out) => out.split("LISTEN/NOTIFY active").length >= 3,
        "the new connection's probe came back",
      );
      assert.match(deliverer.output(), /notifications unavailable/);
      const second = await post(`/v1/${pnid}/contacts`, { phone_number: "+628111300002" });
      await deliveredFor(second.id);
      const ids = receiver.received.map((q) => q.json.id);
      assert.equal(new Set(ids).size, ids.length, "each event delivered once");
    });
  });
}
