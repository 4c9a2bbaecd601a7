import { parsePhoneNumberFromString } from "libphonenumber-js";
import { ApiError } from "../errors.ts";

const FORMATTING = /[\s\-.()\u00a0\u2010-\u2015]/g;

/**
 * Normalises a phone number to E.164, or returns undefined when it cannot be
 * one. Formatting characters (spaces, dashes, dots, parentheses) are removed; a
 * leading `00` or a missing `+` is read as an international number, because
 * WhatsApp ids (`wa_id`) are E.164 without the plus.
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

/** Normalises or throws 400 `invalid_phone_number` naming `param`. */
export function requirePhone(input: string, param: string): string {
  const phone = normalizePhone(input);
  if (phone === undefined) {
    throw new ApiError(
      "invalid_phone_number",
      `${param} must be a possible E.164 phone number such as +628111222333.`,
      { param },
    );
  }
  return phone;
}

/** `wa_id` is the E.164 number without its plus. */
export function waIdOf(phone: string | null): string | null {
  return phone === null ? null : phone.slice(1);
}
