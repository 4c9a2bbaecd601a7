/**
 * Two processes writing one SQLite file at once: a real server answering
 * creates over HTTP, and this process writing through its own connection (as
 * `phonebook import` or a second server would). Every write of both is
 * acknowledged and stored: transactions begin IMMEDIATE (the write lock is
 * taken at BEGIN and waited for under busy_timeout), so a read-then-write
 * transaction never fails because the other process committed in between.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createContact } from "../../src/domain/contacts.ts";
import { createTestStore, seedOrganization } from "../helpers/harness.ts";
import { startServerProcess } from "../helpers/server-process.ts";

const PER_LOOP = 60;
const HTTP_LOOPS = 4;

describe("SQLite shared by two processes", () => {
  test("a server and another process write at once: every write succeeds and is stored", async () => {
    const testStore = await createTestStore("sqlite");
    await testStore.store.migrate();
    const db = testStore.store.db;
    const { orgId, account, auth } = await seedOrganization(db, {
      name: "Two Processes Co",
      phoneNumberId: "500000000000001",
      phoneNumber: "+628111555000",
    });
    // At level info the helper sees the "Server listening" line.
    const server = await startServerProcess({ ...testStore.env, LOG_LEVEL: "info" });
    try {
      const statuses: number[] = [];
      const overHttp = Array.from({ length: HTTP_LOOPS }, async (_, loop) => {
        for (let i = 0; i < PER_LOOP; i++) {
          const res = await fetch(`${server.url}/v1/${account.phone_number_id}/contacts`, {
            method: "POST",
            headers: { ...auth, "content-type": "application/json" },
            body: JSON.stringify({
              phone_number: `+62833${loop}${String(i).padStart(6, "0")}`,
              name: "HTTP",
            }),
          });
          await res.text();
          statuses.push(res.status);
        }
      });
      const scope = { db, organizationId: orgId };
      let local = 0;
      const here = (async () => {
        for (let i = 0; i < PER_LOOP * 2; i++) {
          // Each create reads (is the phone taken?) then writes, in one transaction.
          await testStore.store.transaction((tx) =>
            createContact(
              { ...scope, db: tx },
              account,
              { phone_number: `+62834${String(i).padStart(7, "0")}` },
              "api",
            ),
          );
          local += 1;
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      await Promise.all([...overHttp, here]);
      assert.deepEqual(
        [...new Set(statuses)],
        [201],
        `every create over HTTP is 201 (got ${statuses.filter((s) => s !== 201).join(", ")})`,
      );
      assert.equal(local, PER_LOOP * 2);
      const { n } = await db
        .selectFrom("contacts")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .where("organization_id", "=", orgId)
        .executeTakeFirstOrThrow();
      assert.equal(Number(n), PER_LOOP * HTTP_LOOPS + PER_LOOP * 2, "every acknowledged create is stored");
    } finally {
      await server.kill();
      await testStore.drop();
    }
  });
});
