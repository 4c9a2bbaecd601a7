import type { ContactView } from "../../domain/contacts.ts";
import type { EventRow } from "../../domain/webhooks.ts";
import type { EventToSend } from "../../jobs/webhook-worker.ts";
import { contactOut } from "./representation.ts";
import { NATIVE_FIELDS } from "./wire.ts";

/**
 * Events in the native representation (spec §7): what GET /v1/events shows and
 * what the webhook worker sends. An event stores its contact in domain words;
 * here it becomes the native contact, and `changed_fields` native names (a
 * changed `display_name` is also a changed `name`; a changed `phone_number`
 * also changes `wa_id`).
 */
export function nativeChangedFields(changed: readonly string[]): string[] {
  const out = new Set<string>();
  for (const field of changed) {
    out.add(NATIVE_FIELDS[field] ?? field);
    if (field === "display_name") out.add("display_name");
    if (field === "phone_number") out.add("wa_id");
  }
  return [...out];
}

export function nativeEventData(stored: string): Record<string, unknown> {
  const data = JSON.parse(stored) as Record<string, unknown>;
  if (data.contact !== undefined) data.contact = contactOut(data.contact as ContactView);
  if (Array.isArray(data.changed_fields))
    data.changed_fields = nativeChangedFields(data.changed_fields as string[]);
  return data;
}

export function nativeEventOut(row: Pick<EventRow, "id" | "type" | "seq" | "created_at" | "data">) {
  return {
    id: row.id,
    object: "event" as const,
    type: row.type,
    sequence: row.seq,
    created_at: new Date(row.created_at).toISOString(),
    data: nativeEventData(row.data),
  };
}

/** The body sent for an event: the same bytes on every attempt. */
export function eventBody(row: EventToSend): string {
  return JSON.stringify(nativeEventOut(row));
}
