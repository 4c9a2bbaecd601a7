import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";
import pg from "pg";
import { type BuildOptions, buildApp } from "../../src/app.ts";
import { type Config, loadConfig } from "../../src/config.ts";
import { createAccount } from "../../src/domain/accounts.ts";
import {
  createApiKey,
  createOrganization,
  type RateLimits,
  updateOrganization,
} from "../../src/domain/organizations.ts";
import { MemoryRateLimiter, type RateLimiter } from "../../src/rate-limit/rate-limiter.ts";
import { createPostgresStore, createSqliteStore, type Db, type Store } from "../../src/store/store.ts";
import { PG_ADMIN_URL, type StoreKind } from "./env.ts";

export const ADMIN_TOKEN = "test-admin-token-0123456789";

/** A fresh, empty store of one kind; `drop()` removes every trace of it. */
export interface TestStore {
  kind: StoreKind;
  store: Store;
  /** DATABASE_URL (postgres) or DATA_DIR (sqlite) of this store, for child processes. */
  env: Record<string, string>;
  drop(): Promise<void>;
}

/**
 * A migrated PostgreSQL database that test/run.ts prepares once per run
 * (`preparePgTemplate`): a store copied from it (CREATE DATABASE … TEMPLATE)
 * starts migrated, which costs a fraction of running every migration on
 * each new database (~0.3 s against ~2.5 s each, and a suite makes dozens).
 * Unset when a file runs on its own: each store then migrates as usual.
 */
const PG_TEMPLATE = process.env.PB_TEST_PG_TEMPLATE;

/**
 * A fresh store of one kind. Empty (no tables) unless `migrated` is asked
 * for, which on PostgreSQL copies the run's migrated template when there is
 * one; either way the caller may (and buildApp does) run `migrate()`, a
 * no-op on a migrated store. Tests of migrations themselves take it empty.
 */
export async function createTestStore(
  kind: StoreKind,
  options: { migrated?: boolean } = {},
): Promise<TestStore> {
  if (kind === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "phonebook-test-"));
    const store = createSqliteStore(join(dir, "phonebook.db"));
    return {
      kind,
      store,
      env: { DATA_DIR: dir },
      async drop() {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const name = `pb_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  const template = options.migrated && PG_TEMPLATE ? ` TEMPLATE ${PG_TEMPLATE}` : "";
  await admin.query(`CREATE DATABASE ${name}${template}`);
  await admin.end();
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  // A test waits for a pooled connection as long as it takes (the deadline only
  // catches a hang): 60 concurrent requests on a loaded machine may queue for
  // longer than the production default of 5 s, which answers 503 by design.
  const store = createPostgresStore(url.toString(), { poolTimeoutMs: 300_000 });
  return {
    kind,
    store,
    env: { DATABASE_URL: url.toString() },
    async drop() {
      await store.close();
      const client = new pg.Client({ connectionString: PG_ADMIN_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

export interface Tenant {
  orgId: string;
  key: string;
  keyId: string;
  auth: { authorization: string };
}

export interface Harness {
  kind: StoreKind;
  app: FastifyInstance;
  store: Store;
  config: Config;
  inject(options: InjectOptions): Promise<LightMyRequestResponse & { body: string; json<T = Json>(): T }>;
  /**
   * A new organisation and API key. Its rate limits are the defaults (600
   * reads, 60 writes per minute) unless `rateLimits` says otherwise: a test
   * making more than 60 writes a minute on one tenant should raise them.
   */
  tenant(name?: string, options?: { rateLimits?: Partial<RateLimits> }): Promise<Tenant>;
  account(
    orgId: string,
    options?: {
      phoneNumberId?: string;
      phoneNumber?: string;
      status?: "connected" | "disconnected" | "onboarding";
      name?: string;
    },
  ): Promise<{ id: string; phoneNumberId: string; phoneNumber: string }>;
  close(): Promise<void>;
}

// biome-ignore lint/suspicious/noExplicitAny: test responses are read loosely
export type Json = any;

let phoneNumberIdCounter = 0;

export interface HarnessOptions extends Omit<BuildOptions, "store"> {
  /**
   * Enforce the organisations' rate limits as configured. By default (and
   * unless REDIS_URL is given) a harness scales every limit by 1,000, so that
   * suites of other features, which make many requests per tenant, never meet
   * a 429; the rate-limit suites set this.
   */
  realRateLimits?: boolean;
}

/** Multiplies every bucket's size by `factor` (headers show the scaled size). */
class ScaledRateLimiter implements RateLimiter {
  constructor(
    private readonly inner: RateLimiter,
    private readonly factor: number,
  ) {}
  take(key: string, limit: number) {
    return this.inner.take(key, limit * this.factor);
  }
  close() {
    return this.inner.close();
  }
}

/** The app on a fresh store of `kind`, with the admin API enabled; `options` go to buildApp. */
export async function createHarness(
  kind: StoreKind,
  env: Record<string, string> = {},
  harnessOptions: HarnessOptions = {},
): Promise<Harness> {
  const { realRateLimits, ...options } = harnessOptions;
  if (!realRateLimits && !env.REDIS_URL && !options.rateLimiter) {
    options.rateLimiter = new ScaledRateLimiter(new MemoryRateLimiter(), 1_000);
  }
  const testStore = await createTestStore(kind, { migrated: true });
  const config = loadConfig({
    PHONEBOOK_ADMIN_TOKEN: ADMIN_TOKEN,
    LOG_LEVEL: "silent",
    // Delivery in the app's thread: a thread boots tsx again (~1 s of CPU per
    // app); the suites of the thread set WEBHOOKS_THREAD=true.
    WEBHOOKS_THREAD: "false",
    ...testStore.env,
    ...env,
  });
  const app = await buildApp(config, { ...options, store: testStore.store });
  await app.ready();
  return {
    kind,
    app,
    store: testStore.store,
    config,
    inject: (options) => app.inject(options) as never,
    async tenant(name = "Acme", options = {}) {
      const org = await createOrganization(testStore.store.db, { name });
      if (options.rateLimits) {
        await updateOrganization(testStore.store.db, org.id, { rate_limits: options.rateLimits });
      }
      const { row, key } = await createApiKey(testStore.store.db, org.id, {});
      return { orgId: org.id, key, keyId: row.id, auth: { authorization: `Bearer ${key}` } };
    },
    async account(orgId, options = {}) {
      phoneNumberIdCounter += 1;
      const phoneNumberId =
        options.phoneNumberId ?? `${100000000000000 + process.pid * 1000 + phoneNumberIdCounter}`;
      const phoneNumber = options.phoneNumber ?? `+6281100${String(phoneNumberIdCounter).padStart(5, "0")}`;
      const row = await createAccount(testStore.store.db, orgId, {
        phone_number_id: phoneNumberId,
        phone_number: phoneNumber,
        name: options.name ?? null,
        status: options.status,
      });
      return { id: row.id, phoneNumberId: row.phone_number_id, phoneNumber: row.phone_number };
    },
    async close() {
      await app.close();
      if (harnessOptions.rateLimiter === undefined) await options.rateLimiter?.close();
      await testStore.drop();
    },
  };
}

/**
 * An organisation with limits far above any test's load, one account and one
 * API key, written straight to the store: for tests that run their own server
 * (a child process, or an app built with its own configuration).
 */
export async function seedOrganization(
  db: Db,
  options: { name: string; phoneNumberId: string; phoneNumber: string },
) {
  const org = await createOrganization(db, { name: options.name });
  await updateOrganization(db, org.id, {
    rate_limits: { read_per_minute: 1_000_000, write_per_minute: 1_000_000 },
  });
  const account = await createAccount(db, org.id, {
    phone_number_id: options.phoneNumberId,
    phone_number: options.phoneNumber,
  });
  const { key } = await createApiKey(db, org.id, {});
  return { orgId: org.id, account, key, auth: { authorization: `Bearer ${key}` } };
}

/** Name of a template database for PB_TEST_PG_TEMPLATE (test/run.ts creates it, migrates it, drops it). */
export function pgTemplateName(): string {
  return `pb_test_template_${randomBytes(6).toString("hex")}`;
}

/**
 * Creates and migrates the run's template database (see PG_TEMPLATE); no
 * connection to it is left open, as CREATE DATABASE … TEMPLATE requires.
 */
export async function preparePgTemplate(name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  const store = createPostgresStore(url.toString());
  try {
    await store.migrate();
  } finally {
    await store.close();
  }
}

export async function dropPgTemplate(name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}
