/**
 * A burst of signed Meta webhook deliveries against a real listening server
 * (spec §6: "answer within 250 ms at the median: store, then reply").
 *
 *   node --import tsx bench/webhook-burst.ts [--postgres] [--amount 1000] [--connections 10]
 *
 * Builds the app on a fresh store (SQLite in a temp dir, or a fresh PostgreSQL
 * database with --postgres), posts `amount` deliveries — 4 messages from each
 * of amount/4 people, so concurrent deliveries about the same new person race —
 * and prints errors, non-2xx answers, latency percentiles and the contacts
 * stored (must be amount/4). Exits non-zero on any error.
 */
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import { buildApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { createAccount } from "../src/domain/accounts.ts";
import { createOrganization } from "../src/domain/organizations.ts";
import { signMetaPayload } from "../src/http/webhooks/meta-delivery.ts";
import { createTestStore } from "../test/helpers/harness.ts";
import { messagesDelivery } from "../test/helpers/meta-delivery.ts";

/** The part of autocannon's API used here (loaded untyped, so no ambient module declaration is needed). */
interface BurstRequest {
  method?: string;
  body?: string;
  headers?: Record<string, string>;
  setupRequest?: (request: BurstRequest) => BurstRequest;
}
interface Stats {
  average: number;
  mean: number;
  max: number;
  p50: number;
  p90: number;
  p99: number;
  total: number;
}
interface BurstResult {
  errors: number;
  timeouts: number;
  non2xx: number;
  latency: Stats;
  requests: Stats;
}
const autocannon = createRequire(import.meta.url)("autocannon") as (options: {
  url: string;
  connections: number;
  amount: number;
  requests: BurstRequest[];
}) => Promise<BurstResult>;

const { values } = parseArgs({
  options: {
    postgres: { type: "boolean", default: false },
    amount: { type: "string", default: "1000" },
    connections: { type: "string", default: "10" },
  },
});
const amount = Number(values.amount);
const connections = Number(values.connections);
const people = Math.max(1, Math.floor(amount / 4));
const secret = "bench-app-secret-0123456789";
const phoneNumberId = "106540352242922";

function delivery(i: number): string {
  const n = i % people;
  return messagesDelivery(
    phoneNumberId,
    { wa_id: `62813200${String(n).padStart(5, "0")}`, user_id: `ID.BENCH${n}`, name: `Person ${n}` },
    { messageId: `wamid.bench${i}`, timestamp: 1763790000 + i, body: "hi" },
  );
}

const testStore = await createTestStore(values.postgres ? "postgres" : "sqlite");
const config = loadConfig({
  ...testStore.env,
  META_APP_SECRET: secret,
  META_VERIFY_TOKEN: "bench-verify-token",
  LOG_LEVEL: "error",
});
const app = await buildApp(config, { store: testStore.store });
const org = await createOrganization(testStore.store.db, { name: "Bench" });
await createAccount(testStore.store.db, org.id, {
  phone_number_id: phoneNumberId,
  phone_number: "+628111222333",
});
await app.listen({ host: "127.0.0.1", port: 0 });
const address = app.server.address();
const port = typeof address === "object" && address ? address.port : 0;

const bodies = Array.from({ length: amount }, (_, i) => delivery(i));
let next = 0;
const result = await autocannon({
  url: `http://127.0.0.1:${port}/webhooks/whatsapp`,
  connections,
  amount,
  requests: [
    {
      method: "POST",
      setupRequest: (request) => {
        const body = bodies[next++ % bodies.length]!;
        return {
          ...request,
          body,
          headers: {
            "content-type": "application/json",
            "x-hub-signature-256": signMetaPayload(secret, body),
          },
        };
      },
    },
  ],
});

const stored = await testStore.store.db
  .selectFrom("contacts")
  .select((eb) => eb.fn.countAll<number | string>().as("n"))
  .executeTakeFirstOrThrow();
await app.close();
await testStore.drop();

const summary = {
  store: testStore.kind,
  requests: result.requests.total,
  connections,
  errors: result.errors,
  timeouts: result.timeouts,
  non2xx: result.non2xx,
  latency_ms: {
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    max: result.latency.max,
    mean: result.latency.mean,
  },
  requests_per_second: result.requests.average,
  contacts_stored: Number(stored.n),
  contacts_expected: people,
};
console.log(JSON.stringify(summary, null, 2));
const failed = result.errors > 0 || result.timeouts > 0 || result.non2xx > 0 || Number(stored.n) !== people;
process.exit(failed ? 1 : 0);
