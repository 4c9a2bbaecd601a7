import { monotonicFactory } from "ulidx";

/** Prefixes of spec §1. */
export type IdPrefix = "org" | "key" | "wba" | "ctc" | "lbl" | "req" | "evt" | "imp" | "whs" | "whd";

const ulid = monotonicFactory();
const CROCKFORD = "[0-9A-HJKMNP-TV-Z]{26}";

export function newId(prefix: IdPrefix): string {
  return `${prefix}_${ulid()}`;
}

/** The JSON-schema pattern an id of this prefix must match. */
export function idPattern(prefix: IdPrefix): string {
  return `^${prefix}_${CROCKFORD}$`;
}

const compiled = new Map<IdPrefix, RegExp>();
export function isId(prefix: IdPrefix, value: string): boolean {
  let re = compiled.get(prefix);
  if (!re) {
    re = new RegExp(idPattern(prefix));
    compiled.set(prefix, re);
  }
  return re.test(value);
}
