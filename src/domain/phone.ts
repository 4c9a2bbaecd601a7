import { parsePhoneNumberFromString } from "libphonenumber-js";
import { fieldError } from "../errors.ts";

const FORMATTING = /[\s\-.()\u00a0\u2010-\u2015]/g;

/**
 * Normalises a phone number to E.164, or returns undefined when it cannot be
 * one. Formatting characters (spaces, dashes, dots, parentheses) are removed; a
 * leading `00` or a missing `+` is read as an international number, because
 * WhatsApp's own ids for a number are E.164 without the plus.
 */
export function normalizePhone(input: string): string | undefined {
  let value = input.trim().replace(FORMATTING, "");
  if (value.startsWith("00")) value = `+${value.slice(2)}`;
  else if (!value.startsWith("+")) value = `+${value}`;
  if (!/^\+[1-9]\d{6,14}$/.test(value)) return undefined;
  const parsed = parsePhoneNumberFromString(value);
  if (!parsed?.isPossible()) return undefined;
  return parsed.number;
}

/** Normalises or throws 400 `invalid_phone_number` naming the domain field `field`. */
export function requirePhone(input: string, field: string): string {
  const phone = normalizePhone(input);
  if (phone === undefined) {
    throw fieldError(
      "invalid_phone_number",
      field,
      `${field} must be a possible E.164 phone number such as +628111222333.`,
    );
  }
  return phone;
}

/** The digits of an E.164 number, without its plus (what WhatsApp uses as a person's id). */
export function phoneDigits(phone: string | null): string | null {
  return phone === null ? null : phone.slice(1);
}
