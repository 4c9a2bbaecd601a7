/**
 * SIGKILL of the real server process while webhook deliveries are in flight:
 * after a restart every event of every acknowledged write reaches the
 * receiver at least once, none is lost, and the events of each contact arrive
 * in order (a redelivery of N may come again before N+1, never after it).
 * Both stores.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { insertSubscription } from "../../src/store/repositories/webhooks.ts";
import { storeKinds } from "../helpers/env.ts";
import { createTestStore, seedOrganization } from "../helpers/harness.ts";
import { type ServerProcess, startServerProcess } from "../helpers/server-process.ts";
import { subscriptionRow } from "../helpers/subscriptions.ts";
import { Receiver } from "../helpers/webhook-receiver.ts";

const CONTACTS = 12;
const UPDATES = 4;
const LEASE_MS = 3000;

for (const kind of storeKinds()) {
  describe(`webhook deliveries survive SIGKILL [${kind}]`, () => {
    const started: ServerProcess[] = [];
    after(async () => {
      for (const s of started) await s.kill();
    });

    test("every event delivered at least once, in order per contact, after a kill and restart", async () => {
      const ts = await createTestStore(kind);
      const receiver = await new Receiver().start();
      try {
        await ts.store.migrate();
        const org = await seedOrganization(ts.store.db, {
          name: "Crash Hooks",
          phoneNumberId: "555000111222",
          phoneNumber: "+628119990000",
        });
        await insertSubscription(ts.store.db, subscriptionRow(org.orgId, { url: `${receiver.url}/hook` }));
        if (kind === "sqlite") await ts.store.close();
        // The first answers are quick; from the ninth request on the receiver holds
        // its answer, so deliveries are in flight (sent, not answered) at the kill.
        receiver.respond = (_q, i) =>
          i < 8 ? { delayMs: 20, status: 200 } : { delayMs: 600_000, status: 200 };
        const env = {
          ...ts.env,
          WEBHOOKS_ALLOW_HTTP: "true",
          WEBHOOKS_ALLOW_PRIVATE: "true",
          WEBHOOKS_TIMEOUT_MS: "2000",
          WEBHOOKS_LEASE_MS: String(LEASE_MS),
          WEBHOOKS_RETRY_SCHEDULE_MS: "0,100,100,100,100,100,100,100",
          LOG_LEVEL: "info",
        };
        const first = await startServerProcess(env, { startTimeoutMs: 120_000 });
        started.push(first);
        const headers = { ...org.auth, "content-type": "application/json" };
        const ids: string[] = [];
        for (let i = 0; i < CONTACTS; i++) {
          const res = await fetch(`${first.url}/v1/contacts`, {
            method: "POST",
            headers,
            body: JSON.stringify({ phone_number: `+62811999${String(i).padStart(4, "0")}` }),
          });
          const text = await res.text();
          assert.equal(res.status, 201, text);
          ids.push((JSON.parse(text) as { data: { id: string } }).data.id);
        }
        for (let v = 1; v <= UPDATES; v++) {
          await Promise.all(
            ids.map(async (id) => {
              const res = await fetch(`${first.url}/v1/contacts/${id}`, {
                method: "PATCH",
                headers,
                body: JSON.stringify({ name: `v${v}` }),
              });
              assert.equal(res.status, 200, await res.text());
            }),
          );
        }
        const expected = CONTACTS * (1 + UPDATES);
        await receiver.waitFor(() => receiver.requests.length >= 10, "deliveries in flight");
        assert.ok(receiver.received.length < expected, "the kill comes while deliveries remain");
        await first.kill("SIGKILL");
        receiver.respond = () => ({ status: 200 });
        const second = await startServerProcess(env, { startTimeoutMs: 120_000 });
        started.push(second);
        const distinct = () => new Set(receiver.received.map((q) => q.json.id)).size;
        await receiver.waitFor(() => distinct() === expected, `${expected} distinct events`, 120_000);
        for (const id of ids) {
          const seqs: number[] = [];
          for (const q of receiver.received) {
            if (q.json.data.contact.id !== id) continue;
            if (!seqs.includes(q.json.sequence)) seqs.push(q.json.sequence);
          }
          assert.equal(seqs.length, 1 + UPDATES);
          assert.deepEqual(
            seqs,
            [...seqs].sort((a, b) => a - b),
            `events of ${id} in order`,
          );
          const names = receiver.received
            .filter((q) => q.json.data.contact.id === id && q.json.type === "contact.updated")
            .map((q) => q.json.data.contact.name);
          assert.equal(names[names.length - 1], `v${UPDATES}`);
        }
        await second.kill("SIGTERM");
      } finally {
        await receiver.close();
        await ts.drop();
      }
    });
  });
}
