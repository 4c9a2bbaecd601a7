import { ApiError, fieldError } from "../errors.ts";

/** Field rules of spec §1, shared by every surface, batch, import and webhook. */

/** A JSON value as metadata holds it: primitives, or (Kapso-style) nested arrays and objects. */
export type MetadataValue =
  | string
  | number
  | boolean
  | null
  | MetadataValue[]
  | { [key: string]: MetadataValue };
export type Metadata = Record<string, MetadataValue>;

export const METADATA_MAX_KEYS = 50;
export const METADATA_KEY_MAX = 40;
export const METADATA_STRING_MAX = 500;
/**
 * Objects and arrays nested inside the document, at most: `{ "a": 1 }` has
 * depth 0, `{ "a": { "b": 1 } }` depth 1, `{ "a": [[1]] }` depth 2.
 */
export const METADATA_MAX_DEPTH = 5;
/** The whole document, serialized as JSON (UTF-8 bytes). */
export const METADATA_MAX_BYTES = 8 * 1024;
export const NAME_MAX = 256;
const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);
const EMAIL_RE = /^[^\s@"(),:;<>[\\\]]+@[^\s@"(),:;<>[\\\]]+\.[^\s@"(),:;<>[\\\]]+$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it detects
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

/** The rules in one sentence, for every surface's OpenAPI description. */
export const METADATA_DESCRIPTION =
  "JSON object: ≤ 50 keys of 1–40 characters (not __proto__, constructor, prototype); values strings (≤ 500 characters), " +
  "numbers, booleans, null, or nested objects and arrays (same key and string rules) down to depth 5; ≤ 8 KiB as JSON. " +
  "Updates merge at the top level: a key set to null is removed, a nested value replaces the stored one whole. See docs/contacts.md.";

function invalidMetadata(message: string, param: string): ApiError {
  return new ApiError("invalid_metadata", message, { param });
}

function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Checks a metadata document (spec §1): a JSON object of at most 50 keys
 * (1–40 characters, not `__proto__`/`constructor`/`prototype`); values are
 * strings of ≤ 500 characters, finite numbers, booleans, null, or nested
 * objects and arrays, down to depth 5, where every object follows the same
 * key rules and every string the same length; 8 KiB serialized in all.
 * Lengths count code points. A top-level null means "remove this key" in a
 * merge; a null inside a nested value is kept as data.
 */
export function validateMetadata(value: unknown, param = "metadata"): Metadata {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalidMetadata(`${param} must be a JSON object.`, param);
  }
  const out = checkObject(value as Record<string, unknown>, param, 0) as Metadata;
  const bytes = Buffer.byteLength(JSON.stringify(out));
  if (bytes > METADATA_MAX_BYTES) {
    throw invalidMetadata(
      `${param} is ${bytes} bytes as JSON; at most ${METADATA_MAX_BYTES} (8 KiB) are kept.`,
      param,
    );
  }
  return out;
}

function checkObject(value: Record<string, unknown>, param: string, depth: number): Record<string, unknown> {
  const entries = Object.entries(value);
  if (entries.length > METADATA_MAX_KEYS) {
    throw invalidMetadata(`${param} may have at most ${METADATA_MAX_KEYS} keys.`, param);
  }
  const out: Record<string, unknown> = {};
  for (const [key, v] of entries) {
    const keyParam = `${param}.${key}`;
    const length = characterCount(key);
    if (length < 1 || length > METADATA_KEY_MAX) {
      throw invalidMetadata(`${param} keys must be 1 to ${METADATA_KEY_MAX} characters long.`, keyParam);
    }
    if (FORBIDDEN_KEYS.has(key)) throw invalidMetadata(`${param} may not use the key "${key}".`, keyParam);
    setOwn(out, key, checkValue(v, keyParam, depth));
  }
  return out;
}

function checkValue(v: unknown, param: string, depth: number): unknown {
  if (typeof v === "string") {
    if (v.length > METADATA_STRING_MAX && characterCount(v) > METADATA_STRING_MAX) {
      throw invalidMetadata(`${param} is longer than ${METADATA_STRING_MAX} characters.`, param);
    }
    return v;
  }
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw invalidMetadata(`${param} must be a finite number.`, param);
    return v;
  }
  if (typeof v === "boolean" || v === null) return v;
  if (typeof v === "object") {
    if (depth + 1 > METADATA_MAX_DEPTH) {
      throw invalidMetadata(
        `${param} is nested too deeply: metadata nests objects and arrays at most ${METADATA_MAX_DEPTH} levels.`,
        param,
      );
    }
    if (Array.isArray(v)) return v.map((item, i) => checkValue(item, `${param}.${i}`, depth + 1));
    return checkObject(v as Record<string, unknown>, param, depth + 1);
  }
  throw invalidMetadata(
    `${param} must be a string, a number, a boolean, null, an object or an array.`,
    param,
  );
}

/**
 * Merge of spec §3, at the top level (as Stripe does): a key set to null is
 * removed, any other key is set to the value given, a nested object or array
 * replacing the stored one whole (no deep merge: send the whole nested value).
 */
export function mergeMetadata(current: Metadata, patch: Metadata): Metadata {
  const merged = new Map(Object.entries(current));
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) merged.delete(key);
    else merged.set(key, value);
  }
  if (merged.size > METADATA_MAX_KEYS) {
    throw invalidMetadata(`metadata may have at most ${METADATA_MAX_KEYS} keys after the merge.`, "metadata");
  }
  return Object.fromEntries(merged);
}

/** Stored form: null values dropped (a stored document never holds null). */
export function withoutNulls(metadata: Metadata): Metadata {
  return Object.fromEntries(Object.entries(metadata).filter(([, v]) => v !== null));
}

export function parseStoredMetadata(text: string): Metadata {
  return JSON.parse(text) as Metadata;
}

/** Canonical text of a metadata document (keys sorted at every depth), so equal documents compare equal. */
export function metadataText(metadata: Metadata): string {
  return JSON.stringify(canonical(metadata));
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (typeof value !== "object" || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort())
    setOwn(out, key, canonical((value as Record<string, unknown>)[key]));
  return out;
}

export function requireEmail(value: string, field = "email"): string {
  const email = value.trim();
  if (email.length > 254 || !EMAIL_RE.test(email)) {
    throw fieldError("invalid_email", field, `${field} must be a valid email address.`);
  }
  return email;
}

/**
 * Length in characters as every limit of the API counts them: Unicode code
 * points (an emoji is one, as JSON Schema's maxLength counts), not UTF-16 units.
 */
export function characterCount(value: string): number {
  let count = 0;
  for (const _ of value) count += 1;
  return count;
}

/** Names (`name`, `display_name`, `profile_name`): 1–256 characters (code points), not blank, no control characters. */
export function requireName(value: string, field: string): string {
  const name = value.trim();
  const length = name.length <= NAME_MAX ? name.length : characterCount(name);
  if (length < 1 || length > NAME_MAX || CONTROL_RE.test(name)) {
    throw fieldError(
      "invalid_field_value",
      field,
      `${field} must be 1 to ${NAME_MAX} characters without control characters.`,
    );
  }
  return name;
}

export function hasControlCharacters(value: string): boolean {
  return CONTROL_RE.test(value);
}

const SEPARATOR = "\u001f";

/** The lower-cased text substring search runs over: names, email, username and phone digits. */
export function searchTextOf(fields: {
  display_name: string | null;
  profile_name: string | null;
  email: string | null;
  username: string | null;
  phone_number: string | null;
}): string {
  return [
    fields.display_name,
    fields.profile_name,
    fields.email,
    fields.username,
    fields.phone_number ? fields.phone_number.replace(/\D/g, "") : null,
  ]
    .map((v) => (v ?? "").toLowerCase())
    .join(SEPARATOR);
}

/**
 * A search term as matched against `searchTextOf`: lower-cased; a term made of
 * digits and phone formatting (`+62 812-34`) is reduced to its digits.
 */
export function searchTermOf(raw: string): string {
  if (/\d/.test(raw) && /^[\d\s\-.()+]+$/.test(raw)) return raw.replace(/\D/g, "");
  return raw.toLowerCase();
}
