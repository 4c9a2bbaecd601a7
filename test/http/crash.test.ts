import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createAccount } from "../../src/domain/accounts.ts";
import { createApiKey, createOrganization } from "../../src/domain/organizations.ts";
import { createStore } from "../../src/store/store.ts";
import { storeKinds } from "../helpers/env.ts";
import { createTestStore, type TestStore } from "../helpers/harness.ts";
import { type ServerProcess, startServerProcess } from "../helpers/processes.ts";

/**
 * A real crash: the server process is killed (SIGKILL) inside the write
 * transaction, after the contact and its idempotency record were written and
 * before commit. Neither may survive; the client's retry then creates the
 * contact exactly once.
 */
for (const kind of storeKinds()) {
  describe(`a server process killed mid-write [${kind}]`, () => {
    let store: TestStore;
    const servers: ServerProcess[] = [];
    let orgId: string;
    let headers: Record<string, string>;

    before(async () => {
      store = await createTestStore(kind);
      await store.store.migrate();
      const org = await createOrganization(store.store.db, { name: "Crash Co" });
      orgId = org.id;
      const { key } = await createApiKey(store.store.db, org.id, {});
      await createAccount(store.store.db, org.id, {
        phone_number_id: `${300000000000000 + Math.floor(Math.random() * 1e9)}`,
        phone_number: "+628111222333",
      });
      headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
      if (kind === "sqlite") {
        // The child process writes to the same file; this test's handle only reads after it is gone.
        await store.store.close();
      }
    });
    after(async () => {
      await Promise.all(servers.map((s) => s.stop()));
      await store.drop();
    });

    async function rows(): Promise<{ contacts: number; keys: number }> {
      const reader =
        kind === "sqlite"
          ? createStore({ databaseUrl: undefined, dataDir: store.env.DATA_DIR! })
          : store.store;
      try {
        const contacts = await reader.db
          .selectFrom("contacts")
          .select("id")
          .where("organization_id", "=", orgId)
          .execute();
        const keys = await reader.db
          .selectFrom("idempotency_keys")
          .select("idempotency_key")
          .where("organization_id", "=", orgId)
          .execute();
        return { contacts: contacts.length, keys: keys.length };
      } finally {
        if (reader !== store.store) await reader.close();
      }
    }

    test("leaves neither the contact nor the key; the retry creates it once", async () => {
      const env = { ...store.env, LOG_LEVEL: "info" };
      const script = ["test/helpers/crashing-server.ts"];
      const first = await startServerProcess(env, script);
      servers.push(first);
      const body = JSON.stringify({ phone_number: "+628144000001", name: "Crash" });
      const crashed = await fetch(`${first.url}/v1/contacts`, {
        method: "POST",
        headers: { ...headers, "idempotency-key": "crash-key", "x-test-crash": "kill" },
        body,
      }).then(
        (res) => `answered ${res.status}`,
        () => "connection lost",
      );
      assert.equal(crashed, "connection lost");
      await new Promise<void>((resolve) => {
        if (first.child.exitCode !== null || first.child.signalCode !== null) resolve();
        else first.child.once("exit", () => resolve());
      });
      assert.equal(first.child.signalCode, "SIGKILL");
      assert.deepEqual(await rows(), { contacts: 0, keys: 0 }, "neither the contact nor its key survived");

      const second = await startServerProcess(env, script);
      servers.push(second);
      const statuses: string[] = [];
      for (let i = 0; i < 2; i++) {
        const res = await fetch(`${second.url}/v1/contacts`, {
          method: "POST",
          headers: { ...headers, "idempotency-key": "crash-key" },
          body,
        });
        await res.arrayBuffer();
        statuses.push(`${res.status} ${res.headers.get("idempotent-replayed")}`);
      }
      assert.deepEqual(statuses, ["201 false", "201 true"]);
      await second.stop();
      assert.deepEqual(await rows(), { contacts: 1, keys: 1 });
    });
  });
}
