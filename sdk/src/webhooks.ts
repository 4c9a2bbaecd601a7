import { createHmac, timingSafeEqual } from "node:crypto";

/** What a Phonebook webhook delivers (docs/api.md, "Outbound webhooks"). */
export interface WebhookEvent<Data = Record<string, unknown>> {
  id: string;
  type: string;
  created_at: string;
  data: Data;
  [extra: string]: unknown;
}

export type WebhookHeaders =
  | Headers
  | Record<string, string | readonly string[] | undefined>
  | { get(name: string): string | null };

export interface VerifyOptions {
  /** Largest difference between the signed timestamp and now, in seconds (default 300). */
  toleranceSeconds?: number;
  /** Now, in Unix seconds (tests). */
  now?: number;
}

/** Why a delivery was refused; `reason` is stable, the message may change. */
export class WebhookVerificationError extends Error {
  override readonly name = "WebhookVerificationError";
  constructor(
    readonly reason:
      | "missing_headers"
      | "invalid_header"
      | "timestamp_out_of_tolerance"
      | "no_matching_signature",
    message: string,
  ) {
    super(message);
  }
}

/**
 * Checks that a delivery was signed by Phonebook with `secret` (or one of
 * several, during a rotation) and returns its parsed event. Accepts either
 * header set the server sends:
 * - `Phonebook-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`;
 * - Standard Webhooks: `webhook-id`, `webhook-timestamp`,
 *   `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`.
 * The HMAC key is the base64-decoded part of the `whsec_…` secret. Several
 * signatures may be present (the server signs with the old and the new
 * secret while one is rotated); one match is enough. The timestamp must be
 * within 5 minutes of now. Pass the body exactly as received: re-serialised
 * JSON has other bytes and does not verify.
 */
export function verifyWebhook<Data = Record<string, unknown>>(
  rawBody: string | Uint8Array,
  headers: WebhookHeaders,
  secret: string | readonly string[],
  options: VerifyOptions = {},
): WebhookEvent<Data> {
  const body = typeof rawBody === "string" ? Buffer.from(rawBody, "utf8") : Buffer.from(rawBody);
  const keys = (typeof secret === "string" ? [secret] : [...secret]).map(secretKey);
  const tolerance = options.toleranceSeconds ?? 300;
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const get = headerReader(headers);

  const standardId = get("webhook-id");
  const standardTimestamp = get("webhook-timestamp");
  const standardSignature = get("webhook-signature");
  const phonebook = get("phonebook-signature");
  if (!(standardId && standardTimestamp && standardSignature) && !phonebook) {
    throw new WebhookVerificationError(
      "missing_headers",
      "Neither Phonebook-Signature nor webhook-id, webhook-timestamp and webhook-signature are present.",
    );
  }

  let failure: WebhookVerificationError | undefined;
  if (standardId && standardTimestamp && standardSignature) {
    failure = checkStandard(body, keys, standardId, standardTimestamp, standardSignature, now, tolerance);
    if (!failure) return parse(body);
  }
  if (phonebook) {
    failure = checkPhonebook(body, keys, phonebook, now, tolerance);
    if (!failure) return parse(body);
  }
  throw failure!;
}

function checkStandard(
  body: Buffer,
  keys: Buffer[],
  id: string,
  timestamp: string,
  header: string,
  now: number,
  tolerance: number,
): WebhookVerificationError | undefined {
  const problem = checkTimestamp(timestamp, now, tolerance, "webhook-timestamp");
  if (problem) return problem;
  const signed = Buffer.concat([Buffer.from(`${id}.${timestamp}.`, "utf8"), body]);
  const offered = header
    .split(" ")
    .filter((part) => part.startsWith("v1,"))
    .map((part) => Buffer.from(part.slice(3), "base64"));
  if (offered.length === 0) {
    return new WebhookVerificationError("invalid_header", "webhook-signature carries no v1 signature.");
  }
  return matchAny(keys, signed, offered);
}

function checkPhonebook(
  body: Buffer,
  keys: Buffer[],
  header: string,
  now: number,
  tolerance: number,
): WebhookVerificationError | undefined {
  const parts = header.split(/[\s,]+/).filter((part) => part !== "");
  const timestamps = parts.filter((p) => p.startsWith("t=")).map((p) => p.slice(2));
  const offered = parts
    .filter((p) => p.startsWith("v1=") && /^[0-9a-f]{64}$/i.test(p.slice(3)))
    .map((p) => Buffer.from(p.slice(3), "hex"));
  if (timestamps.length !== 1 || offered.length === 0) {
    return new WebhookVerificationError(
      "invalid_header",
      "Phonebook-Signature must be t=<unix seconds>,v1=<hex signature>[,v1=…].",
    );
  }
  const timestamp = timestamps[0]!;
  const problem = checkTimestamp(timestamp, now, tolerance, "Phonebook-Signature t");
  if (problem) return problem;
  const signed = Buffer.concat([Buffer.from(`${timestamp}.`, "utf8"), body]);
  return matchAny(keys, signed, offered);
}

function checkTimestamp(
  value: string,
  now: number,
  tolerance: number,
  name: string,
): WebhookVerificationError | undefined {
  if (!/^\d{1,12}$/.test(value)) {
    return new WebhookVerificationError("invalid_header", `${name} must be Unix seconds.`);
  }
  if (Math.abs(now - Number(value)) > tolerance) {
    return new WebhookVerificationError(
      "timestamp_out_of_tolerance",
      `${name} is more than ${tolerance} s from now: a replayed or delayed delivery.`,
    );
  }
  return undefined;
}

function matchAny(keys: Buffer[], signed: Buffer, offered: Buffer[]): WebhookVerificationError | undefined {
  for (const key of keys) {
    const expected = createHmac("sha256", key).update(signed).digest();
    for (const signature of offered) {
      if (signature.length === expected.length && timingSafeEqual(signature, expected)) return undefined;
    }
  }
  return new WebhookVerificationError(
    "no_matching_signature",
    "No signature matches the body and the secret.",
  );
}

/** The HMAC key of a `whsec_<base64>` secret: the decoded bytes after the prefix. */
function secretKey(secret: string): Buffer {
  const encoded = secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret;
  const key = Buffer.from(encoded, "base64");
  if (key.length === 0) throw new TypeError("The webhook secret is empty; expected whsec_<base64>.");
  return key;
}

function headerReader(headers: WebhookHeaders): (name: string) => string | undefined {
  if (typeof (headers as { get?: unknown }).get === "function") {
    const source = headers as { get(name: string): string | null };
    return (name) => source.get(name) ?? undefined;
  }
  const lower = new Map<string, string>();
  for (const [name, value] of Object.entries(
    headers as Record<string, string | readonly string[] | undefined>,
  )) {
    if (value === undefined) continue;
    lower.set(name.toLowerCase(), typeof value === "string" ? value : value.join(" "));
  }
  return (name) => lower.get(name);
}

function parse<Data>(body: Buffer): WebhookEvent<Data> {
  return JSON.parse(body.toString("utf8")) as WebhookEvent<Data>;
}
