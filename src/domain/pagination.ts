import { createHmac } from "node:crypto";
import { ApiError } from "../errors.ts";
import { constantTimeEqual } from "./auth.ts";

/** Position after which the next page starts, in `created_at desc, id desc` order. */
export interface Keyset {
  created_at: number;
  id: string;
}

export interface Page<T> {
  data: T[];
  has_more: boolean;
  next_cursor: string | null;
}

/** Page sizes of the native lists; the route schemas check `limit` (http/schemas.ts `Limit`). */
export const DEFAULT_LIMIT = 25;
export const MAX_LIMIT = 100;

/**
 * Canonical text of what a cursor is bound to: the list (route), the
 * organisation it was issued to (null only for the operator's admin lists),
 * and the filters (sorted keys, undefined dropped). A cursor of another
 * organisation, list or filter set is 400 `invalid_cursor`.
 */
export function canonicalScope(
  route: string,
  organizationId: string | null,
  filters: Record<string, unknown>,
): string {
  const entries = Object.entries(filters)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([route, organizationId, entries]);
}

/**
 * Signed, opaque cursors. The payload holds the keyset position and a digest
 * of the scope (route + filters) it was issued for; the signature is an
 * HMAC-SHA256 with the installation's cursor secret, truncated to 128 bits.
 */
export class CursorCodec {
  constructor(private readonly secret: string) {}

  encode(scope: string, position: Keyset): string {
    const payload = Buffer.from(
      JSON.stringify({ t: position.created_at, i: position.id, s: this.digest(scope) }),
    ).toString("base64url");
    return `${payload}.${this.sign(payload)}`;
  }

  decode(scope: string, cursor: string): Keyset {
    const invalid = () =>
      new ApiError(
        "invalid_cursor",
        "cursor is not valid for this request; pass next_cursor back verbatim with the same filters.",
        { param: "cursor" },
      );
    const dot = cursor.indexOf(".");
    if (dot <= 0 || cursor.length > 512) throw invalid();
    const payload = cursor.slice(0, dot);
    if (!constantTimeEqual(cursor.slice(dot + 1), this.sign(payload))) throw invalid();
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    } catch {
      throw invalid();
    }
    const p = parsed as { t?: unknown; i?: unknown; s?: unknown };
    if (typeof p.t !== "number" || typeof p.i !== "string" || typeof p.s !== "string") throw invalid();
    // Signed already, so not forgeable; compared in constant time anyway, like every secret-derived value.
    if (!constantTimeEqual(p.s, this.digest(scope))) throw invalid();
    return { created_at: p.t, id: p.i };
  }

  /**
   * A short keyed digest of an organisation id, for cursor formats that stay
   * readable JSON (Kapso's): a cursor carrying another organisation's tag is
   * refused, and the tag cannot be made without the cursor secret.
   */
  organizationTag(organizationId: string): string {
    return createHmac("sha256", this.secret)
      .update(`organization:${organizationId}`)
      .digest()
      .subarray(0, 12)
      .toString("base64url");
  }

  private sign(payload: string): string {
    return createHmac("sha256", this.secret).update(payload).digest().subarray(0, 16).toString("base64url");
  }

  private digest(scope: string): string {
    return createHmac("sha256", this.secret)
      .update(`scope:${scope}`)
      .digest()
      .subarray(0, 8)
      .toString("base64url");
  }
}

/** Builds a page from `limit + 1` fetched rows. */
export function pageOf<Row extends Keyset, T>(
  rows: Row[],
  limit: number,
  codec: CursorCodec,
  scope: string,
  map: (row: Row) => T,
): Page<T> {
  const has_more = rows.length > limit;
  const kept = has_more ? rows.slice(0, limit) : rows;
  const last = kept[kept.length - 1];
  return {
    data: kept.map(map),
    has_more,
    next_cursor: has_more && last ? codec.encode(scope, { created_at: last.created_at, id: last.id }) : null,
  };
}

/** Where a page starts: strictly after (older than) or strictly before (newer than) a position. */
export interface Bound {
  after?: Keyset | undefined;
  before?: Keyset | undefined;
}

/** A page that can be walked both ways; a cursor is null when there is nothing on that side. */
export interface KeysetPage<Row> {
  rows: Row[];
  /** Position to pass as `before` for the previous (newer) page. */
  before: Keyset | null;
  /** Position to pass as `after` for the next (older) page. */
  after: Keyset | null;
}

/**
 * One page in `created_at desc, id desc` order, starting after `bound.after`
 * or ending just before `bound.before`. `fetch` returns rows in that order
 * (for `before`, the rows nearest to it); `exists` says whether anything lies
 * beyond a bound, so that both ends of a walk are exact.
 */
export async function walkKeyset<Row extends Keyset>(
  bound: Bound,
  limit: number,
  fetch: (bound: Bound, limit: number) => Promise<Row[]>,
  exists: (bound: Bound) => Promise<boolean>,
): Promise<KeysetPage<Row>> {
  const position = (row: Row | undefined): Keyset | null =>
    row ? { created_at: row.created_at, id: row.id } : null;
  if (bound.before) {
    const fetched = await fetch({ before: bound.before }, limit + 1);
    const rows = fetched.length > limit ? fetched.slice(fetched.length - limit) : fetched;
    const hasPrevious = fetched.length > limit;
    const last = rows[rows.length - 1];
    const hasNext = await exists(last ? { after: position(last)! } : {});
    return {
      rows,
      before: hasPrevious ? position(rows[0]) : null,
      after: hasNext ? (position(last) ?? bound.before) : null,
    };
  }
  const fetched = await fetch({ after: bound.after }, limit + 1);
  const rows = fetched.slice(0, limit);
  const hasNext = fetched.length > limit;
  const first = rows[0];
  const hasPrevious = bound.after ? await exists(first ? { before: position(first)! } : {}) : false;
  return {
    rows,
    before: hasPrevious ? (position(first) ?? bound.after ?? null) : null,
    after: hasNext ? position(rows[rows.length - 1]) : null,
  };
}
