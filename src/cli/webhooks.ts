import { toIso } from "../domain/clock.ts";
import {
  DELIVERY_STATUSES,
  listDeliveries,
  listSubscriptions,
  replayDelivery,
  replaySubscription,
} from "../domain/webhooks.ts";
import { ApiError } from "../errors.ts";
import type { DeliveryStatus } from "../store/schema.ts";
import type { Store } from "../store/store.ts";

export interface WebhooksCommand {
  sub: string | undefined;
  arg: string | undefined;
  org: string;
  subscription?: string | undefined;
  status?: string | undefined;
  since?: string | undefined;
  limit?: string | undefined;
}

/** `phonebook webhooks list|deliveries|replay` (an operator's view of one organisation's webhooks). */
export async function webhooksCommand(
  store: Store,
  command: WebhooksCommand,
  print: (human: string, machine: unknown) => void,
): Promise<number> {
  const db = store.db;
  if (command.sub === "list") {
    const rows = await listSubscriptions(db, command.org, undefined, 100);
    print(
      rows
        .map(
          (s) =>
            `${s.id}  ${s.enabled === 1 ? "enabled " : `disabled (${s.disabled_reason})`}  ${s.url}  ${JSON.parse(s.events).join(",")}`,
        )
        .join("\n") || "No webhook endpoints.",
      rows.map((s) => ({
        id: s.id,
        url: s.url,
        events: JSON.parse(s.events),
        enabled: s.enabled === 1,
        disabled_reason: s.disabled_reason,
        created_at: toIso(s.created_at),
      })),
    );
    return 0;
  }
  if (command.sub === "deliveries") {
    const status = command.status;
    if (status !== undefined && !(DELIVERY_STATUSES as readonly string[]).includes(status)) {
      throw new ApiError("invalid_field_value", `--status must be one of ${DELIVERY_STATUSES.join(", ")}.`);
    }
    const limit = command.limit === undefined ? 25 : Number(command.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new ApiError("invalid_limit", "--limit must be a whole number from 1 to 1000.");
    }
    const { rows } = await listDeliveries(
      db,
      {
        organizationId: command.org,
        subscriptionId: command.subscription,
        status: status as DeliveryStatus | undefined,
      },
      undefined,
      limit,
    );
    print(
      rows
        .map(
          (d) =>
            `${d.id}  ${d.status.padEnd(9)}  ${d.event_type.padEnd(30)}  attempts ${d.attempts}  ${d.last_status_code ?? "-"}  ${d.last_error ?? ""}`,
        )
        .join("\n") || "No deliveries.",
      rows.map((d) => ({
        id: d.id,
        subscription_id: d.subscription_id,
        event_id: d.event_id,
        event_type: d.event_type,
        status: d.status,
        attempt_count: d.attempts,
        last_status_code: d.last_status_code,
        last_error: d.last_error,
        created_at: toIso(d.created_at),
      })),
    );
    return 0;
  }
  if (command.sub === "replay") {
    if (command.arg !== undefined) {
      const row = await store.transaction((tx) => replayDelivery(tx, command.org, command.arg!));
      print(`Queued ${row.id} (a replay of ${command.arg}).`, { id: row.id, replay_of: command.arg });
      return 0;
    }
    if (command.subscription === undefined || command.since === undefined) {
      throw new ApiError(
        "missing_required_field",
        "webhooks replay needs a DELIVERY_ID, or --subscription WHS_ID and --since ISO.",
      );
    }
    const since = Date.parse(command.since);
    if (Number.isNaN(since))
      throw new ApiError("invalid_field_value", "--since must be an ISO 8601 instant.");
    const result = await store.transaction((tx) =>
      replaySubscription(tx, command.org, command.subscription!, { since }),
    );
    print(
      `Queued ${result.queued} deliveries${result.next_since === null ? "" : `; more from ${toIso(result.next_since)}`}.`,
      { queued: result.queued, next_since: result.next_since === null ? null : toIso(result.next_since) },
    );
    return 0;
  }
  throw new ApiError("invalid_field_value", "webhooks takes list, deliveries or replay.");
}
