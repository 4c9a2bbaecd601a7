/**
 * Which real servers this test run has. `test/run.ts` probes them once and
 * passes the answer down; a test file run on its own probes nothing and uses
 * the variables as given.
 */
export const PG_ADMIN_URL = process.env.PB_TEST_PG_ADMIN_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = process.env.PB_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export type StoreKind = "sqlite" | "postgres";

export function storeKinds(): StoreKind[] {
  const raw = process.env.PB_TEST_STORES ?? "sqlite,postgres";
  return raw.split(",").filter((s): s is StoreKind => s === "sqlite" || s === "postgres");
}

export function hasRedis(): boolean {
  return (process.env.PB_TEST_REDIS ?? "1") === "1";
}
