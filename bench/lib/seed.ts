import { performance } from "node:perf_hooks";
import { sql } from "kysely";
import { createAccount } from "../../src/domain/accounts.ts";
import { createApiKey, createOrganization, updateOrganization } from "../../src/domain/organizations.ts";
import { newId } from "../../src/ids.ts";
import { insertLabelRows } from "../../src/store/repositories/bulk-insert.ts";
import { mergeSearchIndexStep } from "../../src/store/repositories/search-index.ts";
import type { Store } from "../../src/store/store.ts";
import { type BulkContact, bulkInsertContacts } from "./bulk-insert.ts";
import { generateContact, prng, TENANTS } from "./dataset.ts";
import { rssSampler } from "./servers.ts";

export interface SeededTenant {
  orgId: string;
  name: string;
  key: string;
  accounts: Array<{ id: string; phoneNumberId: string; phoneNumber: string }>;
  labelIds: string[];
}

export interface SeedResult {
  tenants: SeededTenant[];
  contacts: number;
  inserted: number;
  skipped: number;
  /** Wall time of the whole load, data generation included. */
  seconds: number;
  /** Time inside the product's bulk path (validation, row building, INSERTs, commits). */
  productSeconds: number;
  peakRssBytes: number;
}

/**
 * Rate limits of the benchmark's organisations: far above anything two cores
 * can serve, so that the benchmark measures work, not the limiter.
 */
const UNLIMITED = 100_000_000;
const TWO_YEARS_MS = 2 * 365 * 24 * 3600 * 1000;

/**
 * Creates the tenants (organisations, keys, accounts, labels) and loads `n`
 * contacts through the product's bulk-insert path (`bulkInsertContacts`: the
 * same field rules and row building as a create, multi-row INSERTs), one
 * transaction per batch.
 */
export async function seed(
  store: Store,
  n: number,
  options: { batch: number; log: (line: string) => void },
): Promise<SeedResult> {
  const db = store.db;
  const tenants: SeededTenant[] = [];
  for (const plan of TENANTS) {
    const org = await createOrganization(db, { name: plan.name });
    await updateOrganization(db, org.id, {
      rate_limits: { read_per_minute: UNLIMITED, write_per_minute: UNLIMITED },
    });
    const { key } = await createApiKey(db, org.id, { label: "bench" });
    const accounts = [];
    for (const account of plan.accounts) {
      const row = await createAccount(db, org.id, {
        phone_number_id: account.phoneNumberId,
        phone_number: account.phoneNumber,
        name: account.name,
      });
      accounts.push({ id: row.id, phoneNumberId: row.phone_number_id, phoneNumber: row.phone_number });
    }
    const at = Date.now();
    const labels = plan.labels.map((name, i) => ({
      id: newId("lbl"),
      organization_id: org.id,
      name,
      name_lower: name.toLowerCase(),
      color: ["gray", "green", "blue", "amber", "red", "violet"][i % 6]!,
      created_at: at,
      updated_at: at,
    }));
    await insertLabelRows(db, labels);
    tenants.push({ orgId: org.id, name: plan.name, key, accounts, labelIds: labels.map((l) => l.id) });
  }

  const random = prng(20261122);
  const start = Date.now() - TWO_YEARS_MS;
  const step = Math.max(1, Math.floor(TWO_YEARS_MS / Math.max(1, n)));
  const rss = rssSampler(process.pid);
  const began = performance.now();
  let productMs = 0;
  let inserted = 0;
  let skipped = 0;
  let nextReport = 0.1;
  for (let from = 0; from < n; from += options.batch) {
    const groups: BulkContact[][] = tenants.map(() => []);
    for (let i = from; i < Math.min(n, from + options.batch); i++) {
      const generated = generateContact(i, n, random);
      const tenant = tenants[generated.tenant]!;
      groups[generated.tenant]!.push({
        accountId: tenant.accounts[generated.account]!.id,
        input: { ...generated.input, label_ids: generated.labels.map((l) => tenant.labelIds[l]!) },
        at: start + i * step,
      });
    }
    const t0 = performance.now();
    await store.transaction(async (tx) => {
      for (const [t, group] of groups.entries()) {
        const result = await bulkInsertContacts(
          { db: tx, organizationId: tenants[t]!.orgId },
          group,
          "import",
        );
        inserted += result.inserted;
        skipped += result.skipped;
      }
    });
    productMs += performance.now() - t0;
    const done = Math.min(n, from + options.batch) / n;
    if (done >= nextReport) {
      const seconds = (performance.now() - began) / 1000;
      options.log(`  seeded ${Math.round(done * 100)}% (${Math.round((done * n) / seconds)} rows/s)`);
      nextReport += 0.1;
    }
    // Let the RSS sampler and other timers run between batches.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const seconds = (performance.now() - began) / 1000;
  if (store.dialect === "postgres") {
    // What autovacuum would do minutes after a bulk load: give the planner its statistics.
    await sql`ANALYZE`.execute(db);
  } else {
    // What the server's search-index maintainer does within a minute of a bulk
    // load (src/jobs/search-index.ts): the trigram index merged into one segment.
    while (await mergeSearchIndexStep(db, 1000)) {}
    await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(db);
  }
  return {
    tenants,
    contacts: n,
    inserted,
    skipped,
    seconds,
    productSeconds: productMs / 1000,
    peakRssBytes: rss.stop(),
  };
}

/** Up to `k` contacts of an organisation spread over its whole history (ids and phones to request). */
export async function sampleContacts(
  store: Store,
  organizationId: string,
  k: number,
): Promise<Array<{ id: string; phone_number: string }>> {
  const count = await countContacts(store, organizationId);
  const every = Math.max(1, Math.floor(count / k));
  const rows = await store.db
    .selectFrom("contacts")
    .select(["id", "phone_number"])
    .where("organization_id", "=", organizationId)
    .where("phone_number", "is not", null)
    .where(sql<boolean>`seq % ${every} = 0`)
    .limit(k)
    .execute();
  return rows.map((r) => ({ id: r.id, phone_number: r.phone_number! }));
}

export async function countContacts(store: Store, organizationId: string): Promise<number> {
  const row = await store.db
    .selectFrom("contacts")
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .where("organization_id", "=", organizationId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** The keyset position of the row at `depth` in an organisation's list order (created_at desc, id desc). */
export async function positionAt(
  store: Store,
  organizationId: string,
  depth: number,
): Promise<{ created_at: number; id: string }> {
  return store.db
    .selectFrom("contacts")
    .select(["created_at", "id"])
    .where("organization_id", "=", organizationId)
    .orderBy("created_at", "desc")
    .orderBy("id", "desc")
    .limit(1)
    .offset(depth)
    .executeTakeFirstOrThrow();
}
