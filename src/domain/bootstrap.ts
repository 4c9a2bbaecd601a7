import { countOrganizations } from "../store/repositories/organizations.ts";
import type { Store } from "../store/store.ts";
import { type CreatedApiKey, createApiKey, createOrganization } from "./organizations.ts";

/**
 * First run: on an empty store, create one organisation (no accounts yet) and
 * one API key, and return the key so that it can be printed once. A settings
 * row claimed in the same transaction makes this happen exactly once, even when
 * several processes start together on one PostgreSQL.
 */
export async function bootstrapIfEmpty(
  store: Store,
): Promise<{ organizationId: string; apiKey: CreatedApiKey } | undefined> {
  return store.transaction(async (tx) => {
    if ((await countOrganizations(tx)) > 0) return undefined;
    const claimed = await tx
      .insertInto("settings")
      .values({ key: "bootstrapped_at", value: new Date().toISOString() })
      .onConflict((oc) => oc.column("key").doNothing())
      .executeTakeFirst();
    if (Number(claimed.numInsertedOrUpdatedRows ?? 0) === 0) return undefined;
    const org = await createOrganization(tx, { name: "My organization" });
    const apiKey = await createApiKey(tx, org.id, { label: "bootstrap" });
    return { organizationId: org.id, apiKey };
  });
}
