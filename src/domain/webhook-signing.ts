import { createHmac, randomBytes } from "node:crypto";

/**
 * Webhook signatures. A secret is `whsec_` + base64 of 32 random bytes (the
 * Standard Webhooks format); the HMAC key of BOTH schemes is the
 * base64-decoded bytes after `whsec_`:
 * - `Phonebook-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` (spec §7);
 * - Standard Webhooks: `webhook-id`, `webhook-timestamp`, and
 *   `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<t>.<raw body>">`.
 * While a rotated secret overlaps, each header carries one signature per secret.
 */
export const SECRET_PREFIX = "whsec_";

export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString("base64");
}

export function keyOf(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  return Buffer.from(encoded, "base64");
}

export interface SignatureHeaders {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
  "phonebook-signature": string;
}

export function signatureHeaders(
  secrets: readonly string[],
  messageId: string,
  timestampSeconds: number,
  body: string,
): SignatureHeaders {
  const t = String(timestampSeconds);
  const standard: string[] = [];
  const phonebook: string[] = [`t=${t}`];
  for (const secret of secrets) {
    const key = keyOf(secret);
    standard.push(`v1,${createHmac("sha256", key).update(`${messageId}.${t}.${body}`).digest("base64")}`);
    phonebook.push(`v1=${createHmac("sha256", key).update(`${t}.${body}`).digest("hex")}`);
  }
  return {
    "webhook-id": messageId,
    "webhook-timestamp": t,
    "webhook-signature": standard.join(" "),
    "phonebook-signature": phonebook.join(","),
  };
}
