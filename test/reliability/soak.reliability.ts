/**
 * Soak (reliability mode only; not collected by `npm test`): the real server
 * (embedded store) with a monitor preloaded, driven by autocannon. First the
 * capacity of a mixed workload is measured (PB_SOAK_PROBE_SECONDS, default
 * 10); then the same mix runs at PB_SOAK_LOAD_PERCENT (default 70) % of it for
 * PB_SOAK_SECONDS (default 600). Invariants: 0 errors, timeouts and non-2xx;
 * RSS growth under 10 % from the end of warm-up (first 20 % of the run) to the
 * end; no event-loop stall over 200 ms. Prints the memory curve.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { createAccount } from "../../src/domain/accounts.ts";
import { createContact } from "../../src/domain/contacts.ts";
import { createApiKey, createOrganization, updateOrganization } from "../../src/domain/organizations.ts";
import { createSqliteStore } from "../../src/store/store.ts";
import { scaled } from "../helpers/reliability.ts";
import { type ServerProcess, startServerProcess } from "../helpers/server-process.ts";
import type { SoakSample } from "./soak-monitor.ts";

const SECONDS = scaled("PB_SOAK_SECONDS", 600, 600);
const PROBE_SECONDS = scaled("PB_SOAK_PROBE_SECONDS", 10, 10);
const LOAD_PERCENT = scaled("PB_SOAK_LOAD_PERCENT", 70, 70);
const CONNECTIONS = 10;
const SEED_CONTACTS = 1000;
const MAX_RSS_GROWTH = 0.1;
const MAX_STALL_MS = 200;

const MB = 1024 * 1024;

/** The part of autocannon's API used here (it ships no types; a local view avoids a types package). */
interface LoadRequest {
  method: string;
  path?: string;
  body?: string;
  setupRequest?: (request: LoadRequest) => LoadRequest;
}
interface LoadResult {
  requests: { average: number; sent: number };
  latency: { p50: number; p99: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  "2xx": number;
}
type Autocannon = (options: Record<string, unknown>) => Promise<LoadResult>;
const MODULE = "autocannon";
const autocannon = ((await import(MODULE)) as { default: Autocannon }).default;

describe("soak: sustained mixed load on the real server [sqlite]", () => {
  const dir = mkdtempSync(join(tmpdir(), "phonebook-soak-"));
  let server: ServerProcess | undefined;

  after(async () => {
    await server?.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  });

  test(`${SECONDS} s at ${LOAD_PERCENT} % of measured capacity: 0 errors, flat memory, no stalls`, {
    timeout: (SECONDS + PROBE_SECONDS + 300) * 1000,
  }, async () => {
    // A store with a tenant, an account and some contacts to read.
    const store = createSqliteStore(join(dir, "phonebook.db"));
    await store.migrate();
    const org = await createOrganization(store.db, { name: "Soak Co" });
    await updateOrganization(store.db, org.id, {
      rate_limits: { read_per_minute: 1_000_000, write_per_minute: 1_000_000 },
    });
    const { key } = await createApiKey(store.db, org.id, {});
    const account = await createAccount(store.db, org.id, {
      phone_number_id: "400000000000001",
      phone_number: "+628111777000",
    });
    const scope = { db: store.db, organizationId: org.id };
    const ids: string[] = [];
    for (let i = 0; i < SEED_CONTACTS; i++) {
      const contact = await createContact(
        scope,
        account,
        {
          phone_number: `+62857${String(i).padStart(8, "0")}`,
          display_name: i % 100 === 0 ? `Soakrare ${i}` : `Customer ${i}`,
          metadata: { tier: i % 2 ? "gold" : "silver" },
        },
        "api",
      );
      ids.push(contact.id);
    }
    await store.close();

    const samples: SoakSample[] = [];
    server = await startServerProcess(
      { DATA_DIR: dir, LOG_LEVEL: "info", PB_SOAK_SAMPLE_MS: "1000" },
      { preload: ["./test/reliability/soak-monitor.ts"], ipc: true },
    );
    server.child.on("message", (message: { soakSample?: SoakSample }) => {
      if (message.soakSample) samples.push(message.soakSample);
    });

    const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
    let created = 0;
    const pick = () => ids[Math.floor(Math.random() * ids.length)]!;
    // One connection cycles through the list: 6 reads, 2 writes.
    const requests: LoadRequest[] = [
      { method: "GET", setupRequest: (r) => ({ ...r, path: `/v1/contacts/${pick()}` }) },
      { method: "GET", path: "/v1/contacts?limit=25" },
      { method: "GET", setupRequest: (r) => ({ ...r, path: `/v1/contacts/${pick()}` }) },
      { method: "GET", path: "/v1/contacts?search=soakrare" },
      {
        method: "POST",
        path: "/v1/contacts",
        setupRequest: (r) => {
          created += 1;
          return {
            ...r,
            body: JSON.stringify({
              phone_number: `+62858${process.pid % 100}${String(created).padStart(7, "0")}`,
              name: "Soak",
            }),
          };
        },
      },
      { method: "GET", path: `/v1/${account.phone_number_id}/contacts?limit=10` },
      {
        method: "PATCH",
        setupRequest: (r) => ({
          ...r,
          path: `/v1/contacts/${pick()}`,
          body: JSON.stringify({ metadata: { seen: Date.now() } }),
        }),
      },
      { method: "GET", path: "/v1/me" },
    ];
    const run = (options: Record<string, unknown>) =>
      autocannon({ url: server!.url, connections: CONNECTIONS, headers, requests, ...options });

    const probe = await run({ duration: PROBE_SECONDS });
    const capacity = probe.requests.average;
    assert.equal(
      probe.errors + probe.timeouts + probe.non2xx,
      0,
      `errors while measuring capacity: ${JSON.stringify({ errors: probe.errors, timeouts: probe.timeouts, non2xx: probe.non2xx })}`,
    );
    const rate = Math.max(1, Math.round((capacity * LOAD_PERCENT) / 100));
    const soakStart = samples.length > 0 ? samples[samples.length - 1]!.t : 0;

    const result = await run({ duration: SECONDS, overallRate: rate });
    const soak = samples.filter((s) => s.t > soakStart);
    assert.ok(soak.length >= Math.min(10, SECONDS / 2), `only ${soak.length} monitor samples`);

    const warm = soak.filter((s) => s.t - soakStart >= SECONDS * 200);
    const mean = (list: SoakSample[]) => list.reduce((sum, s) => sum + s.rss, 0) / Math.max(1, list.length);
    const window = Math.max(3, Math.floor(warm.length / 10));
    const baseline = mean(warm.slice(0, window));
    const final = mean(warm.slice(-window));
    const growth = (final - baseline) / baseline;
    const worstStall = Math.max(...soak.map((s) => s.eldMaxMs));
    const curve: string[] = [];
    const step = Math.max(1, Math.floor(soak.length / 20));
    for (let i = 0; i < soak.length; i += step) {
      const s = soak[i]!;
      curve.push(
        `${Math.round((s.t - soakStart) / 1000)}s ${(s.rss / MB).toFixed(1)}MB heap ${(s.heapUsed / MB).toFixed(1)}MB eld-max ${s.eldMaxMs.toFixed(1)}ms`,
      );
    }
    console.log(
      [
        `# soak: capacity ${capacity.toFixed(0)} req/s (mixed, ${CONNECTIONS} connections); soak at ${rate} req/s for ${SECONDS} s`,
        `# soak: sent ${result.requests.sent}, 2xx ${result["2xx"]}, non-2xx ${result.non2xx}, errors ${result.errors}, timeouts ${result.timeouts}, ` +
          `achieved ${result.requests.average.toFixed(0)} req/s, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, ${created} creates`,
        `# soak: RSS after warm-up ${(baseline / MB).toFixed(1)} MB → end ${(final / MB).toFixed(1)} MB (${(growth * 100).toFixed(1)} %); ` +
          `max RSS ${(Math.max(...soak.map((s) => s.rss)) / MB).toFixed(1)} MB; worst event-loop delay ${worstStall.toFixed(1)} ms`,
        "# soak memory curve:",
        ...curve.map((line) => `#   ${line}`),
      ].join("\n"),
    );
    assert.equal(result.errors, 0, "connection errors");
    assert.equal(result.timeouts, 0, "timeouts");
    assert.equal(result.non2xx, 0, "non-2xx responses");
    assert.ok(growth < MAX_RSS_GROWTH, `RSS grew ${(growth * 100).toFixed(1)} % after warm-up`);
    assert.ok(worstStall < MAX_STALL_MS, `event-loop stall of ${worstStall.toFixed(1)} ms`);
  });
});
