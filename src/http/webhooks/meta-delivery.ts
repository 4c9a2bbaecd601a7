import { createHash, createHmac } from "node:crypto";
import { constantTimeEqual } from "../../domain/auth.ts";
import { NAME_MAX } from "../../domain/contact-fields.ts";
import type { ObservedChange } from "../../domain/inbound.ts";
import { ApiError, type FieldNames } from "../../errors.ts";

/**
 * Meta's WhatsApp webhook deliveries (spec §6), in Meta's words: the
 * signature over the raw bytes, the payload parsed and checked, and its facts
 * handed to the domain (`ingestObservations`) in the domain's words.
 */

// ---------------------------------------------------------------- signature

const SIGNATURE_RE = /^sha256=([0-9a-fA-F]{64})$/;

/** `sha256=<hex>`: the HMAC-SHA256 of the exact bytes, keyed with the app secret (what Meta sends). */
export function signMetaPayload(appSecret: string, raw: Buffer | string): string {
  return `sha256=${createHmac("sha256", appSecret).update(raw).digest("hex")}`;
}

/** True when `header` is a valid `X-Hub-Signature-256` of `raw`; compared in constant time. */
export function verifyMetaSignature(appSecret: string, raw: Buffer, header: string | undefined): boolean {
  if (header === undefined) return false;
  const match = SIGNATURE_RE.exec(header.trim());
  if (!match) return false;
  return constantTimeEqual(signMetaPayload(appSecret, raw), `sha256=${match[1]!.toLowerCase()}`);
}

// ---------------------------------------------------------------- parsed shape

/** A person as Meta names them in `contacts[]` (wire values, not yet normalised). */
export interface ObservedPerson {
  wa_id?: string | undefined;
  user_id?: string | undefined;
  parent_user_id?: string | undefined;
  profile_name?: string | undefined;
  username?: string | undefined;
}

/** `user_changed_number` / `user_changed_user_id`: the identity moves from `previous` to `next`. */
export interface IdentityChange {
  type: "user_changed_number" | "user_changed_user_id";
  previous: { wa_id?: string | undefined; user_id?: string | undefined };
  next: { wa_id?: string | undefined; user_id?: string | undefined; parent_user_id?: string | undefined };
}

/** A `user_preferences` marketing stop/resume. */
export interface PreferenceEvent {
  wa_id?: string | undefined;
  user_id?: string | undefined;
  opt_out: boolean;
  /** ms */
  at: number;
}

/** One `entry[].changes[]` item this service acts on. */
export interface DeliveryChange {
  field: string;
  phone_number_id: string;
  /** SHA-256 of the change's field and value: the redelivery receipt's key. */
  digest: string;
  /** `entry[i].changes[j]`, for log lines. */
  path: string;
  identity_changes: IdentityChange[];
  contacts: ObservedPerson[];
  preferences: PreferenceEvent[];
}

export interface Delivery {
  object: string;
  changes: DeliveryChange[];
}

export const WHATSAPP_OBJECT = "whatsapp_business_account";
const HANDLED_FIELDS = new Set(["messages", "user_preferences"]);
const MAX_ID = 128;

function malformed(param: string, message: string): ApiError {
  return new ApiError("invalid_field_value", `${param} ${message}`, { param });
}

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function objectAt(value: unknown, param: string): Obj {
  if (!isObject(value)) throw malformed(param, "must be an object.");
  return value;
}

function arrayAt(value: unknown, param: string, required = false): unknown[] {
  if (value === undefined && !required) return [];
  if (!Array.isArray(value)) throw malformed(param, "must be an array.");
  return value;
}

function stringAt(value: unknown, param: string, max = MAX_ID): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string" || value.length > max) {
    throw malformed(param, `must be a string of at most ${max} characters.`);
  }
  return value;
}

/** Meta sends empty strings for absent values; they mean "not given". */
function textAt(value: unknown, param: string, max: number): string | undefined {
  const text = stringAt(value, param, max);
  return text === undefined || text.trim() === "" ? undefined : text;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it replaces
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]+/g;

/**
 * A profile name is whatever the person typed into WhatsApp: it is kept as
 * far as the name rules allow (control characters become spaces, the length
 * is cut to NAME_MAX) rather than failing the whole delivery, which Meta would
 * then retry for days.
 */
function profileNameAt(value: unknown, param: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw malformed(param, "must be a string.");
  const name = value.replace(CONTROL_CHARACTERS, " ").trim().slice(0, NAME_MAX).trim();
  return name === "" ? undefined : name;
}

/** Unix seconds as a number or a digit string (Meta uses both) → ms. */
function secondsAt(value: unknown, param: string): number {
  const seconds =
    typeof value === "number"
      ? value
      : typeof value === "string" && /^\d{1,12}$/.test(value)
        ? Number(value)
        : NaN;
  if (!Number.isSafeInteger(seconds) || seconds < 0 || seconds > 1e11) {
    throw malformed(param, "must be a Unix timestamp in seconds.");
  }
  return seconds * 1000;
}

function parsePerson(value: unknown, param: string): ObservedPerson {
  const item = objectAt(value, param);
  const profile = item.profile === undefined ? {} : objectAt(item.profile, `${param}.profile`);
  const person: ObservedPerson = {
    wa_id: stringAt(item.wa_id, `${param}.wa_id`, 40),
    user_id: stringAt(item.user_id, `${param}.user_id`),
    parent_user_id: stringAt(item.parent_user_id, `${param}.parent_user_id`),
    profile_name: profileNameAt(profile.name, `${param}.profile.name`),
    username: textAt(profile.username, `${param}.profile.username`, MAX_ID),
  };
  if (person.wa_id === undefined && person.user_id === undefined) {
    throw new ApiError("missing_required_field", `${param} needs wa_id or user_id.`, {
      param: `${param}.wa_id`,
    });
  }
  return person;
}

function parseSystemMessage(message: Obj, param: string): IdentityChange | undefined {
  const system = objectAt(message.system, `${param}.system`);
  const type = stringAt(system.type, `${param}.system.type`);
  if (type !== "user_changed_number" && type !== "user_changed_user_id") return undefined;
  const change: IdentityChange = {
    type,
    previous: {
      wa_id: stringAt(message.from, `${param}.from`, 40),
      user_id:
        stringAt(system.previous_user_id, `${param}.system.previous_user_id`) ??
        stringAt(message.from_user_id, `${param}.from_user_id`),
    },
    next: {
      wa_id: stringAt(system.wa_id, `${param}.system.wa_id`, 40),
      user_id: stringAt(system.user_id, `${param}.system.user_id`),
      parent_user_id: stringAt(system.parent_user_id, `${param}.system.parent_user_id`),
    },
  };
  if (change.previous.wa_id === undefined && change.previous.user_id === undefined) {
    throw new ApiError("missing_required_field", `${param} needs from or from_user_id.`, {
      param: `${param}.from`,
    });
  }
  const needed = type === "user_changed_number" ? "wa_id" : "user_id";
  if (change.next[needed] === undefined) {
    throw new ApiError("missing_required_field", `${param}.system.${needed} is required for ${type}.`, {
      param: `${param}.system.${needed}`,
    });
  }
  return change;
}

function parsePreference(value: unknown, param: string): PreferenceEvent | undefined {
  const item = objectAt(value, param);
  const category = stringAt(item.category, `${param}.category`);
  const choice = stringAt(item.value, `${param}.value`);
  // Other categories and values are Meta's to add; they are acknowledged and not acted on.
  if (category !== "marketing_messages" || (choice !== "stop" && choice !== "resume")) return undefined;
  const event: PreferenceEvent = {
    wa_id: stringAt(item.wa_id, `${param}.wa_id`, 40),
    user_id: stringAt(item.user_id, `${param}.user_id`),
    opt_out: choice === "stop",
    at: secondsAt(item.timestamp, `${param}.timestamp`),
  };
  if (event.wa_id === undefined && event.user_id === undefined) {
    throw new ApiError("missing_required_field", `${param} needs wa_id or user_id.`, {
      param: `${param}.wa_id`,
    });
  }
  return event;
}

function parseChange(value: unknown, param: string): DeliveryChange | undefined {
  const change = objectAt(value, param);
  const field = stringAt(change.field, `${param}.field`);
  if (field === undefined) {
    throw new ApiError("missing_required_field", `${param}.field is required.`, { param: `${param}.field` });
  }
  if (!HANDLED_FIELDS.has(field)) return undefined;
  const body = objectAt(change.value, `${param}.value`);
  const metadata = objectAt(body.metadata, `${param}.value.metadata`);
  const phoneNumberId = stringAt(metadata.phone_number_id, `${param}.value.metadata.phone_number_id`, 64);
  if (phoneNumberId === undefined || phoneNumberId === "") {
    throw new ApiError("missing_required_field", `${param}.value.metadata.phone_number_id is required.`, {
      param: `${param}.value.metadata.phone_number_id`,
    });
  }
  const contacts = arrayAt(body.contacts, `${param}.value.contacts`).map((item, i) =>
    parsePerson(item, `${param}.value.contacts[${i}]`),
  );
  const identityChanges: IdentityChange[] = [];
  arrayAt(body.messages, `${param}.value.messages`).forEach((item, i) => {
    const message = objectAt(item, `${param}.value.messages[${i}]`);
    if (message.type !== "system") return;
    const parsed = parseSystemMessage(message, `${param}.value.messages[${i}]`);
    if (parsed) identityChanges.push(parsed);
  });
  const preferences: PreferenceEvent[] = [];
  arrayAt(body.user_preferences, `${param}.value.user_preferences`).forEach((item, i) => {
    const parsed = parsePreference(item, `${param}.value.user_preferences[${i}]`);
    if (parsed) preferences.push(parsed);
  });
  arrayAt(body.statuses, `${param}.value.statuses`);
  return {
    field,
    phone_number_id: phoneNumberId,
    digest: createHash("sha256").update(field).update("\n").update(JSON.stringify(body)).digest("hex"),
    path: param,
    identity_changes: identityChanges,
    contacts,
    preferences,
  };
}

/**
 * Parses a delivery's raw bytes (already authenticated). Invalid JSON is 400
 * `invalid_json`; a shape this service cannot act on safely is 400
 * `invalid_field_value` / `missing_required_field` naming the path. Fields and
 * message types it does not act on are accepted and skipped, so that Meta
 * adding things never turns deliveries into errors.
 */
export function parseDelivery(raw: Buffer): Delivery {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString("utf8"));
  } catch {
    throw new ApiError("invalid_json", "The body is not valid JSON.");
  }
  const root = objectAt(json, "body");
  const object = stringAt(root.object, "object");
  if (object === undefined) {
    throw new ApiError("missing_required_field", "object is required.", { param: "object" });
  }
  const changes: DeliveryChange[] = [];
  if (object !== WHATSAPP_OBJECT) return { object, changes };
  arrayAt(root.entry, "entry", true).forEach((entryValue, i) => {
    const entry = objectAt(entryValue, `entry[${i}]`);
    arrayAt(entry.changes, `entry[${i}].changes`, true).forEach((changeValue, j) => {
      const change = parseChange(changeValue, `entry[${i}].changes[${j}]`);
      if (change) changes.push(change);
    });
  });
  return { object, changes };
}

/** Meta's names of the domain's contact fields, for error `param`s and messages. */
export const WEBHOOK_FIELDS: FieldNames = {
  phone_number: "wa_id",
  business_scoped_user_id: "user_id",
  parent_business_scoped_user_id: "parent_user_id",
  profile_name: "profile.name",
  username: "profile.username",
};

/**
 * A `wa_id` as the domain reads it. Meta's wa_id is by definition the
 * person's number in international form without its `+`, so it is handed
 * over with the `+`: the account's default_country, which reads local-format
 * numbers typed by people, never reinterprets it (docs/meta-webhooks.md).
 */
function phoneOfWaId(waId: string | undefined): string | undefined {
  return waId === undefined ? undefined : `+${waId.trim().replace(/^\+/, "")}`;
}

/** The facts of a delivery's changes in domain terms. */
export function observationsOf(delivery: Delivery): ObservedChange[] {
  return delivery.changes.map((change) => ({
    phone_number_id: change.phone_number_id,
    digest: change.digest,
    identity_moves: change.identity_changes.map((move) => ({
      previous: {
        phone_number: phoneOfWaId(move.previous.wa_id),
        business_scoped_user_id: move.previous.user_id,
      },
      next: {
        phone_number: phoneOfWaId(move.next.wa_id),
        business_scoped_user_id: move.next.user_id,
        parent_business_scoped_user_id: move.next.parent_user_id,
      },
    })),
    people: change.contacts.map((person) => ({
      phone_number: phoneOfWaId(person.wa_id),
      business_scoped_user_id: person.user_id,
      parent_business_scoped_user_id: person.parent_user_id,
      profile_name: person.profile_name,
      username: person.username,
    })),
    preferences: change.preferences.map((event) => ({
      phone_number: phoneOfWaId(event.wa_id),
      business_scoped_user_id: event.user_id,
      opt_out: event.opt_out,
      at: event.at,
    })),
  }));
}
