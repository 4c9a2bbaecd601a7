import { ApiError } from "../errors.ts";

/** Field rules of spec §1, shared by every surface, batch, import and webhook. */

export type MetadataValue = string | number | boolean | null;
export type Metadata = Record<string, MetadataValue>;

export const METADATA_MAX_KEYS = 50;
export const METADATA_KEY_MAX = 40;
export const METADATA_STRING_MAX = 500;
export const NAME_MAX = 256;
const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);
const EMAIL_RE = /^[^\s@"(),:;<>[\\\]]+@[^\s@"(),:;<>[\\\]]+\.[^\s@"(),:;<>[\\\]]+$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it detects
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

function invalidMetadata(message: string, param: string): ApiError {
  return new ApiError("invalid_metadata", message, { param });
}

/**
 * Checks a metadata document: a flat object of at most 50 keys (1–40
 * characters, not `__proto__`/`constructor`/`prototype`), values strings of
 * ≤ 500 characters, finite numbers, booleans or null. With `allowNull`, null
 * values are kept (they mean "remove this key" in a merge).
 */
export function validateMetadata(value: unknown, param = "metadata"): Metadata {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalidMetadata(`${param} must be a flat JSON object.`, param);
  }
  const entries = Object.entries(value);
  if (entries.length > METADATA_MAX_KEYS) {
    throw invalidMetadata(`${param} may have at most ${METADATA_MAX_KEYS} keys.`, param);
  }
  const out: Metadata = {};
  for (const [key, v] of entries) {
    const keyParam = `${param}.${key}`;
    if (key.length < 1 || key.length > METADATA_KEY_MAX) {
      throw invalidMetadata(`${param} keys must be 1 to ${METADATA_KEY_MAX} characters long.`, keyParam);
    }
    if (FORBIDDEN_KEYS.has(key)) throw invalidMetadata(`${param} may not use the key "${key}".`, keyParam);
    if (typeof v === "string") {
      if (v.length > METADATA_STRING_MAX) {
        throw invalidMetadata(`${keyParam} is longer than ${METADATA_STRING_MAX} characters.`, keyParam);
      }
    } else if (typeof v === "number") {
      if (!Number.isFinite(v)) throw invalidMetadata(`${keyParam} must be a finite number.`, keyParam);
    } else if (typeof v !== "boolean" && v !== null) {
      throw invalidMetadata(
        `${keyParam} must be a string, a number, a boolean or null (metadata is flat).`,
        keyParam,
      );
    }
    Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Merge of spec §3: a key set to null is removed, other keys are set. */
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

/** Canonical text of a metadata document (sorted keys), so equal documents compare equal. */
export function metadataText(metadata: Metadata): string {
  const sorted = Object.keys(metadata)
    .sort()
    .map((k) => [k, metadata[k]] as const);
  return JSON.stringify(Object.fromEntries(sorted));
}

export function requireEmail(value: string, param = "email"): string {
  const email = value.trim();
  if (email.length > 254 || !EMAIL_RE.test(email)) {
    throw new ApiError("invalid_email", `${param} must be a valid email address.`, { param });
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
export function requireName(value: string, param: string): string {
  const name = value.trim();
  const length = name.length <= NAME_MAX ? name.length : characterCount(name);
  if (length < 1 || length > NAME_MAX || CONTROL_RE.test(name)) {
    throw new ApiError(
      "invalid_field_value",
      `${param} must be 1 to ${NAME_MAX} characters without control characters.`,
      {
        param,
      },
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
