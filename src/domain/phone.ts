import { parsePhoneNumberFromString as parseWithTypes } from "libphonenumber-js/max";
import {
  type CountryCode,
  isSupportedCountry,
  type PhoneNumber,
  parsePhoneNumberFromString,
} from "libphonenumber-js/min";
import { fieldError } from "../errors.ts";

const FORMATTING = /[\s\-.()\u00a0\u2010-\u2015]/g;

/**
 * How a number was read (docs/contacts.md, "Phone numbers"): an E.164 number,
 * or why none: `invalid` (no reading is a possible number) or `ambiguous`
 * (with a default country, the digits are two different valid numbers and
 * nothing decides between them).
 */
export type PhoneReading = { phone: string } | { error: "invalid" | "ambiguous" };

/**
 * Reads a phone number as E.164. Formatting characters (spaces, dashes, dots,
 * parentheses) are removed. A leading `+` or `00` is an international number.
 *
 * Without a default country, digits without `+` are an international number
 * too (`628111222333`), because WhatsApp's own ids for a person's number are
 * E.164 without the plus.
 *
 * With a default country (an account's `default_country`, ISO 3166-1
 * alpha-2), digits without `+` may also be a local number of that country
 * (`0812-3456-789` in ID, `(202) 555-0123` in US):
 * - if only one reading is a valid number (international as written, or
 *   national of the country), that one;
 * - if both are valid and equal (`628123456789` in ID), that number;
 * - if both are valid and differ, the mobile one (WhatsApp numbers are
 *   mobile numbers); when both or neither are mobile, `ambiguous`;
 * - if neither is valid, the international reading when it is possible (as
 *   without a default country), else the national one when it is possible.
 * A number in international form therefore keeps its meaning unless it is
 * also a valid local number of the country, which the mobile rule settles in
 * every case measured (docs/contacts.md).
 */
export function readPhone(input: string, defaultCountry?: string | null): PhoneReading {
  let value = input.trim().replace(FORMATTING, "");
  if (value.startsWith("00")) value = `+${value.slice(2)}`;
  if (value.startsWith("+") || !defaultCountry) return possibleInternational(value) ?? { error: "invalid" };
  if (!/^\d{1,17}$/.test(value)) return { error: "invalid" };
  const international = parseInternational(`+${value}`);
  const national = parseNational(value, defaultCountry);
  const internationalValid = international?.isValid() === true;
  const nationalValid = national?.isValid() === true;
  if (internationalValid && nationalValid) {
    if (international!.number === national!.number) return { phone: international!.number };
    return betweenTwo(international!.number, national!.number);
  }
  if (internationalValid) return { phone: international!.number };
  if (nationalValid) return { phone: national!.number };
  if (international?.isPossible()) return { phone: international.number };
  if (national?.isPossible()) return { phone: national.number };
  return { error: "invalid" };
}

/**
 * Two different numbers both valid by the compact metadata (the common path
 * uses it: it is what made this rule cheap): the full metadata, which knows
 * number types, decides. Measured in docs/contacts.md.
 */
function betweenTwo(international: string, national: string): PhoneReading {
  const a = parseWithTypes(international);
  const b = parseWithTypes(national);
  const aValid = a?.isValid() === true;
  const bValid = b?.isValid() === true;
  if (aValid !== bValid) return { phone: aValid ? international : national };
  if (aValid && bValid) {
    const aMobile = isMobile(a!.getType());
    if (aMobile !== isMobile(b!.getType())) return { phone: aMobile ? international : national };
  }
  return { error: "ambiguous" };
}

function possibleInternational(value: string): { phone: string } | undefined {
  const parsed = parseInternational(value.startsWith("+") ? value : `+${value}`);
  return parsed?.isPossible() ? { phone: parsed.number } : undefined;
}

function parseInternational(value: string): PhoneNumber | undefined {
  if (!/^\+[1-9]\d{6,14}$/.test(value)) return undefined;
  return parsePhoneNumberFromString(value);
}

function parseNational(digits: string, country: string): PhoneNumber | undefined {
  if (!isSupportedCountry(country)) return undefined;
  const parsed = parsePhoneNumberFromString(digits, country as CountryCode);
  return parsed && /^\+[1-9]\d{6,14}$/.test(parsed.number) ? parsed : undefined;
}

function isMobile(type: string | undefined): boolean {
  return type === "MOBILE" || type === "FIXED_LINE_OR_MOBILE";
}

/** Normalises a phone number to E.164 (see `readPhone`), or returns undefined when it cannot be one. */
export function normalizePhone(input: string, defaultCountry?: string | null): string | undefined {
  const reading = readPhone(input, defaultCountry);
  return "phone" in reading ? reading.phone : undefined;
}

/**
 * Normalises (see `readPhone`) or throws 400 `invalid_phone_number` naming
 * the domain field `field`.
 */
export function requirePhone(input: string, field: string, defaultCountry?: string | null): string {
  const reading = readPhone(input, defaultCountry);
  if ("phone" in reading) return reading.phone;
  if (reading.error === "ambiguous") {
    throw fieldError(
      "invalid_phone_number",
      field,
      `${field} is ambiguous: as written it is a valid international number, and it is also a valid ` +
        `local number of ${defaultCountry}; write it with + and the country code.`,
    );
  }
  throw fieldError(
    "invalid_phone_number",
    field,
    defaultCountry
      ? `${field} must be a possible phone number: international such as +628111222333, or local to ${defaultCountry}.`
      : `${field} must be a possible E.164 phone number such as +628111222333 ` +
          "(a local number such as 0812… needs the account's default_country).",
  );
}

/** ISO 3166-1 alpha-2 codes libphonenumber knows the numbering plan of (upper case). */
export function isCountryCode(value: string): boolean {
  return /^[A-Z]{2}$/.test(value) && isSupportedCountry(value);
}

/**
 * A default country as given (`id`, `ID`): its upper-case ISO 3166-1 alpha-2
 * code, or 400 `invalid_field_value` naming `field`.
 */
export function requireCountry(value: string, field = "default_country"): string {
  const code = value.trim().toUpperCase();
  if (!isCountryCode(code)) {
    throw fieldError(
      "invalid_field_value",
      field,
      `${field} must be an ISO 3166-1 alpha-2 country code such as ID, GB or US.`,
    );
  }
  return code;
}

/** The digits of an E.164 number, without its plus (what WhatsApp uses as a person's id). */
export function phoneDigits(phone: string | null): string | null {
  return phone === null ? null : phone.slice(1);
}
