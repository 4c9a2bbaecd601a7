import { randomUUID } from "node:crypto";

/** Who writes in a Meta `messages` delivery: a phone (wa_id), a BSUID (user_id), or both. */
export interface InboundPerson {
  wa_id?: string;
  user_id?: string;
  parent_user_id?: string;
  name?: string;
  username?: string;
}

/**
 * The body of a webhook delivery in which one person sends a text message to
 * the account, as Meta posts it (one entry, one `messages` change). Shared by
 * the webhook tests and the benchmarks.
 */
export function messagesDelivery(
  phoneNumberId: string,
  person: InboundPerson,
  options: { messageId?: string; timestamp?: number; body?: string } = {},
): string {
  const profile: Record<string, string> = {};
  if (person.name) profile.name = person.name;
  if (person.username) profile.username = person.username;
  const contact: Record<string, unknown> = { profile };
  if (person.wa_id) contact.wa_id = person.wa_id;
  if (person.user_id) contact.user_id = person.user_id;
  if (person.parent_user_id) contact.parent_user_id = person.parent_user_id;
  return JSON.stringify({
    object: "whatsapp_business_account",
    entry: [
      {
        id: "102290129340398",
        changes: [
          {
            field: "messages",
            value: {
              messaging_product: "whatsapp",
              metadata: { display_phone_number: "628111222333", phone_number_id: phoneNumberId },
              contacts: [contact],
              messages: [
                {
                  ...(person.wa_id ? { from: person.wa_id } : {}),
                  ...(person.user_id ? { from_user_id: person.user_id } : {}),
                  id: options.messageId ?? `wamid.${randomUUID()}`,
                  timestamp: String(options.timestamp ?? 1763790000),
                  type: "text",
                  text: { body: options.body ?? "hello" },
                },
              ],
            },
          },
        ],
      },
    ],
  });
}
