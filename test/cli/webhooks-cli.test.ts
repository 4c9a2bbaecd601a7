import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runCli } from "../../src/cli/main.ts";
import { emitEvents } from "../../src/domain/events.ts";
import { newId } from "../../src/ids.ts";
import { insertSubscription } from "../../src/store/repositories/webhooks.ts";
import { storeKinds } from "../helpers/env.ts";
import { createTestStore, seedOrganization } from "../helpers/harness.ts";
import { subscriptionRow } from "../helpers/subscriptions.ts";

async function cli(argv: string[], env: Record<string, string>) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(
    argv,
    { LOG_LEVEL: "silent", ...env },
    { out: (l) => out.push(l), err: (l) => err.push(l) },
  );
  return { code, out: out.join("\n"), err: err.join("\n") };
}

for (const kind of storeKinds()) {
  describe(`phonebook webhooks [${kind}]`, () => {
    test("list, deliveries, replay of a delivery and of a window", async () => {
      const ts = await createTestStore(kind, { migrated: true });
      try {
        await ts.store.migrate();
        const org = await seedOrganization(ts.store.db, {
          name: "Cli Hooks",
          phoneNumberId: "555000333444",
          phoneNumber: "+628119991111",
        });
        const subscriptionId = newId("whs");
        const at = Date.now();
        await insertSubscription(
          ts.store.db,
          subscriptionRow(org.orgId, { id: subscriptionId, url: "https://hooks.example.com/x", at }),
        );
        await ts.store.transaction((tx) =>
          emitEvents({ db: tx, organizationId: org.orgId }, [
            { type: "import.completed", data: { import: { id: "imp_x" } } },
          ]),
        );
        const list = await cli(["webhooks", "list", "--org", org.orgId, "--json"], ts.env);
        assert.equal(list.code, 0, list.err);
        assert.equal(JSON.parse(list.out)[0].id, subscriptionId);
        const deliveries = await cli(["webhooks", "deliveries", "--org", org.orgId, "--json"], ts.env);
        assert.equal(deliveries.code, 0, deliveries.err);
        const [d] = JSON.parse(deliveries.out);
        assert.equal(d.event_type, "import.completed");
        assert.equal(d.status, "pending");
        const replay = await cli(["webhooks", "replay", d.id, "--org", org.orgId, "--json"], ts.env);
        assert.equal(replay.code, 0, replay.err);
        assert.equal(JSON.parse(replay.out).replay_of, d.id);
        const windowed = await cli(
          [
            "webhooks",
            "replay",
            "--org",
            org.orgId,
            "--subscription",
            subscriptionId,
            "--since",
            new Date(at - 1000).toISOString(),
            "--json",
          ],
          ts.env,
        );
        assert.equal(windowed.code, 0, windowed.err);
        assert.equal(JSON.parse(windowed.out).queued, 1);
        const human = await cli(
          ["webhooks", "deliveries", "--org", org.orgId, "--status", "pending"],
          ts.env,
        );
        assert.equal(human.out.split("\n").length, 3);
        const bad = await cli(["webhooks", "deliveries", "--org", org.orgId, "--status", "maybe"], ts.env);
        assert.equal(bad.code, 1);
        assert.match(bad.err, /--status/);
      } finally {
        await ts.drop();
      }
    });
  });
}
