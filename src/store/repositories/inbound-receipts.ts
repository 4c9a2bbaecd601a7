import type { Executor } from "../store.ts";

/** Records that a webhook change was applied; false when it already was (a redelivery). */
export async function recordReceipt(
  db: Executor,
  digest: string,
  accountId: string,
  at: number,
): Promise<boolean> {
  const result = await db
    .insertInto("inbound_receipts")
    .values({ digest, account_id: accountId, received_at: at })
    .onConflict((oc) => oc.column("digest").doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

/** Forgets receipts older than `before` (ms); returns how many were removed. */
export async function pruneReceipts(db: Executor, before: number): Promise<number> {
  const result = await db.deleteFrom("inbound_receipts").where("received_at", "<", before).executeTakeFirst();
  return Number(result.numDeletedRows);
}
