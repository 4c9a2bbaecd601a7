import { randomFillSync } from "node:crypto";
import { monotonicFactory } from "ulidx";

/** Prefixes of spec §1. */
export type IdPrefix =
  | "org"
  | "key"
  | "wba"
  | "ctc"
  | "lbl"
  | "req"
  | "evt"
  | "imp"
  | "whs"
  | "whd"
  | "idh"
  | "mrg";

/**
 * The random part of ids from a pooled CSPRNG buffer, one byte per character
 * (256 is a multiple of the 32-letter alphabet: no bias). ulidx's default asks
 * the CSPRNG for one byte per character, 16 calls per id: measured at ~6 % of
 * a get's CPU, since every request gets a `req_` id.
 */
const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let poolOffset = POOL_SIZE;
function pooledRandom(): number {
  if (poolOffset >= POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  return pool[poolOffset++]! / 256;
}

const ulid = monotonicFactory(pooledRandom);
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

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID_RE.test(value);
}

/**
 * A ULID written as a UUID: the same 128 bits (a ULID's 26 Crockford base32
 * characters carry 130 bits, the first character at most 7), as lower-case
 * 8-4-4-4-12 hex. Kapso's surfaces show contact ids this way.
 */
export function ulidToUuid(ulid: string): string {
  let value = 0n;
  for (const ch of ulid.toUpperCase()) value = (value << 5n) | BigInt(ALPHABET.indexOf(ch));
  const hex = value.toString(16).padStart(32, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The inverse of ulidToUuid. */
export function uuidToUlid(uuid: string): string {
  let value = BigInt(`0x${uuid.replaceAll("-", "")}`);
  let out = "";
  for (let i = 0; i < 26; i++) {
    out = ALPHABET[Number(value & 31n)] + out;
    value >>= 5n;
  }
  return out;
}

/** `ctc_<ULID>` → its UUID form. */
export function contactUuid(id: string): string {
  return ulidToUuid(id.slice(id.indexOf("_") + 1));
}

/** A contact id in either form (`ctc_<ULID>` or its UUID) → `ctc_<ULID>`; anything else unchanged. */
export function contactIdOf(value: string): string {
  return isUuid(value) ? `ctc_${uuidToUlid(value)}` : value;
}
