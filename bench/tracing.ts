/**
 * What OpenTelemetry tracing costs a request: two real servers (child
 * processes, built from the sources with tsx) on one SQLite store, one with
 * tracing off and one exporting every span over OTLP/HTTP to an in-process
 * receiver that accepts and drops them, driven in alternation, side by side.
 *
 *   node --import tsx bench/tracing.ts [--rounds 3] [--seconds 5] [--connections 10] [--ratio R]
 *
 * `--ratio R` samples that share of the traces (parentbased_traceidratio)
 * instead of every one, which tells the cost of recording from the cost of
 * context propagation.
 *
 * Prints requests/s of each round, the medians, and on/off.
 */
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { createContact } from "../src/domain/contacts.ts";
import { createTestStore, seedOrganization } from "../test/helpers/harness.ts";
import { startServerProcess } from "../test/helpers/server-process.ts";

interface Result {
  requests: { average: number };
  non2xx: number;
  errors: number;
}
const autocannon = createRequire(import.meta.url)("autocannon") as (
  options: Record<string, unknown>,
  callback: (error: Error | null, result: Result) => void,
) => unknown;

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "5" },
    connections: { type: "string", default: "10" },
    ratio: { type: "string" },
  },
});

const receiver = createServer((request, response) => {
  request.resume();
  request.on("end", () => response.writeHead(200, { "content-type": "application/json" }).end("{}"));
});
await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

const store = await createTestStore("sqlite");
await store.store.migrate();
const seeded = await seedOrganization(store.store.db, {
  name: "Bench",
  phoneNumberId: "106540352248001",
  phoneNumber: "+628111888001",
});
const scope = { db: store.store.db, dialect: store.store.dialect, organizationId: seeded.orgId };
const contact = await createContact(scope, seeded.account, { phone_number: "+628111888002" }, "api");
for (let i = 0; i < 200; i++) {
  await createContact(
    scope,
    seeded.account,
    { phone_number: `+62811189${String(i).padStart(4, "0")}`, display_name: `P ${randomUUID().slice(0, 6)}` },
    "api",
  );
}

const servers = {
  off: await startServerProcess({ ...store.env }),
  on: await startServerProcess({
    ...store.env,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl,
    ...(values.ratio === undefined
      ? {}
      : { OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: values.ratio }),
  }),
};
const paths = [`/v1/contacts/${contact.id}`, "/v1/contacts?limit=25"];

function drive(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url,
        connections: Number(values.connections),
        duration: Number(values.seconds),
        requests: paths.map((path) => ({ method: "GET", path, headers: seeded.auth })),
      },
      (error, result) => {
        if (error) reject(error);
        else if (result.non2xx > 0 || result.errors > 0)
          reject(new Error(`${result.non2xx} non-2xx, ${result.errors} errors`));
        else resolve(result.requests.average);
      },
    );
  });
}

const rates: Record<"off" | "on", number[]> = { off: [], on: [] };
try {
  for (const which of ["off", "on"] as const) await drive(servers[which].url); // warm-up
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const which of round % 2 === 0 ? (["off", "on"] as const) : (["on", "off"] as const)) {
      rates[which].push(await drive(servers[which].url));
      console.log(`round ${round + 1} ${which}: ${rates[which].at(-1)!.toFixed(0)} req/s`);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const off = median(rates.off);
  const on = median(rates.on);
  console.log(
    `median off ${off.toFixed(0)} req/s, on ${on.toFixed(0)} req/s, on/off ${(on / off).toFixed(2)}`,
  );
} finally {
  await servers.off.kill("SIGTERM");
  await servers.on.kill("SIGTERM");
  await store.drop();
  receiver.close();
}
