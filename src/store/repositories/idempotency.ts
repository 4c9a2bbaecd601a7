import { type Selectable, sql } from "kysely";
import type { IdempotencyKeysTable } from "../schema.ts";
import { dialectOf, type Executor, type Tx } from "../store.ts";

export type IdempotencyRow = Selectable<IdempotencyKeysTable>;

export interface IdempotencyClaim {
  organization_id: string;
  idempotency_key: string;
  fingerprint: string;
  request_id: string;
  created_at: number;
  expires_at: number;
}

/**
 * Inserts the key row unless one exists; true when this transaction now owns
 * the key. On PostgreSQL a concurrent duplicate's INSERT waits on the primary
 * key until the first transaction ends; `waitMs` bounds that wait
 * (`lock_timeout`, set for the rest of the transaction in the same round trip;
 * `restoreLockWait` undoes it). SQLite serialises write transactions, so there
 * is nothing to bound there.
 */
export async function claimIdempotencyKey(tx: Tx, claim: IdempotencyClaim, waitMs: number): Promise<boolean> {
  const dialect = dialectOf(tx);
  if (dialect === "postgres") {
    const result = await sql`
      WITH wait AS (SELECT set_config('lock_timeout', ${String(Math.max(1, Math.floor(waitMs)))}, true))
      INSERT INTO idempotency_keys
        (organization_id, idempotency_key, fingerprint, request_id, created_at, expires_at)
      SELECT ${claim.organization_id}, ${claim.idempotency_key}, ${claim.fingerprint}, ${claim.request_id},
             ${claim.created_at}::bigint, ${claim.expires_at}::bigint
      FROM wait
      ON CONFLICT (organization_id, idempotency_key) DO NOTHING`.execute(tx);
    return Number(result.numAffectedRows ?? 0) > 0;
  }
  const result = await tx
    .insertInto("idempotency_keys")
    .values({ ...claim, kind: null, status: null, headers: null, body: null })
    .onConflict((oc) => oc.columns(["organization_id", "idempotency_key"]).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

/** Puts `lock_timeout` back to the server's default after a claim (PostgreSQL). */
export async function restoreLockWait(tx: Tx): Promise<void> {
  const dialect = dialectOf(tx);
  if (dialect === "postgres") await sql`SET LOCAL lock_timeout TO DEFAULT`.execute(tx);
}

export async function findIdempotencyKey(
  db: Executor,
  organizationId: string,
  key: string,
): Promise<IdempotencyRow | undefined> {
  return db
    .selectFrom("idempotency_keys")
    .selectAll()
    .where("organization_id", "=", organizationId)
    .where("idempotency_key", "=", key)
    .executeTakeFirst();
}

/** Deletes one key row if it has expired (so the key can be claimed afresh). */
export async function deleteExpiredIdempotencyKey(
  tx: Tx,
  organizationId: string,
  key: string,
  at: number,
): Promise<void> {
  await tx
    .deleteFrom("idempotency_keys")
    .where("organization_id", "=", organizationId)
    .where("idempotency_key", "=", key)
    .where("expires_at", "<=", at)
    .execute();
}

/** Records the finished response on the row claimed by the same transaction. */
export async function finishIdempotencyKey(
  tx: Tx,
  organizationId: string,
  key: string,
  response: { kind: "response" | "error"; status: number; headers: string; body: string | null },
): Promise<void> {
  await tx
    .updateTable("idempotency_keys")
    .set(response)
    .where("organization_id", "=", organizationId)
    .where("idempotency_key", "=", key)
    .execute();
}

/** Deletes up to `limit` expired rows; returns how many went. */
export async function deleteExpiredIdempotencyKeys(db: Executor, at: number, limit: number): Promise<number> {
  const result = await db
    .deleteFrom("idempotency_keys")
    .where((eb) =>
      eb(
        eb.refTuple("organization_id", "idempotency_key"),
        "in",
        eb
          .selectFrom("idempotency_keys")
          .select(["organization_id", "idempotency_key"])
          .where("expires_at", "<=", at)
          .limit(limit)
          .$asTuple("organization_id", "idempotency_key"),
      ),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows ?? 0);
}
