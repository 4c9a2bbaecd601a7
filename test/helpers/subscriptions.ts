import { generateSecret } from "../../src/domain/webhook-signing.ts";
import { newId } from "../../src/ids.ts";
import type { SubscriptionRow } from "../../src/store/repositories/webhooks.ts";

/**
 * A webhook subscription row as the API writes a new one (enabled, a fresh
 * secret, nothing failing), for tests that seed the store directly.
 */
export function subscriptionRow(
  organizationId: string,
  fields: { url: string; events?: string[]; id?: string; at?: number },
): SubscriptionRow {
  const at = fields.at ?? Date.now();
  return {
    id: fields.id ?? newId("whs"),
    organization_id: organizationId,
    url: fields.url,
    description: null,
    events: JSON.stringify(fields.events ?? ["*"]),
    include_import_contacts: 0,
    enabled: 1,
    secret: generateSecret(),
    previous_secret: null,
    previous_secret_expires_at: null,
    failing_since: null,
    disabled_at: null,
    disabled_reason: null,
    created_at: at,
    updated_at: at,
  };
}
