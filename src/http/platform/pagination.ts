import type { FastifyRequest } from "fastify";
import { constantTimeEqual } from "../../domain/auth.ts";
import type { Bound, Keyset } from "../../domain/pagination.ts";
import { ApiError } from "../../errors.ts";
import { principalOf } from "../auth.ts";

/**
 * Kapso's paging formats (platform and graph surfaces): Base64 keyset cursors
 * and the deprecated offset mode with its window limit. The domain pages by
 * keyset positions (`Bound`) and offsets; these are how Kapso writes them.
 */

const CURSOR_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Kapso-style cursors (platform and graph surfaces): standard Base64 of the
 * JSON keyset values `{"created_at":"<ISO>","id":"…"}`. They are positions,
 * not capabilities, so they are not signed; a malformed one is 400
 * `invalid_cursor` naming the parameter.
 */
export function encodeKeysetCursor(position: Keyset, org?: string): string {
  const values: Record<string, string> = {
    created_at: new Date(position.created_at).toISOString(),
    id: position.id,
  };
  if (org !== undefined) values.org = org;
  return Buffer.from(JSON.stringify(values)).toString("base64");
}

/**
 * The organisation tag Kapso cursors carry (`"org"`, a keyed digest of the
 * organisation id): a cursor of another organisation is 400 invalid_cursor.
 */
export function kapsoCursorOrg(request: FastifyRequest): string {
  return request.server.services.cursors.organizationTag(principalOf(request).organization.id);
}

export function decodeKeysetCursor(raw: string, param: string, org?: string): Keyset {
  const invalid = () =>
    new ApiError(
      "invalid_cursor",
      `${param} is not a valid cursor; pass paging.cursors.${param} back verbatim.`,
      {
        param,
      },
    );
  // A `+` of an unencoded cursor arrives as a space; the URL-safe alphabet is accepted too.
  const text = raw.replaceAll(" ", "+");
  if (text.length === 0 || text.length > 512 || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, "base64").toString("utf8"));
  } catch {
    throw invalid();
  }
  if (typeof parsed !== "object" || parsed === null) throw invalid();
  const p = parsed as { created_at?: unknown; id?: unknown; org?: unknown };
  if (typeof p.created_at !== "string" || typeof p.id !== "string" || !CURSOR_ID_RE.test(p.id))
    throw invalid();
  if (org !== undefined && (typeof p.org !== "string" || !constantTimeEqual(p.org, org))) throw invalid();
  const ms = Date.parse(p.created_at);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/.test(p.created_at) || Number.isNaN(ms)) {
    throw invalid();
  }
  return { created_at: ms, id: p.id };
}

/** The `after`/`before` pair of a request: at most one of them. */
export function boundOf(after: string | undefined, before: string | undefined, org?: string): Bound {
  if (after !== undefined && before !== undefined) {
    throw new ApiError("invalid_field_value", "Pass either after or before, not both.", { param: "before" });
  }
  return {
    after: after === undefined ? undefined : decodeKeysetCursor(after, "after", org),
    before: before === undefined ? undefined : decodeKeysetCursor(before, "before", org),
  };
}

/** Limits of Kapso's deprecated offset pagination. */
export const OFFSET_MAX_PAGE = 50;
export const OFFSET_MAX_PER_PAGE = 100;
export const OFFSET_MAX_WINDOW = 5000;

/**
 * Offset mode: `page` ≥ 1 and `per_page` 1–100, as the route's schema types
 * them (400 otherwise, here too); a window `page × per_page` beyond 5,000
 * rows (or a page beyond 50) is 400 `legacy_offset_pagination_limit_exceeded`
 * with the figures a client needs to switch to cursors.
 */
export function offsetWindow(
  requestedPage: number | undefined,
  requestedPerPage: number | undefined,
  defaultPerPage: number,
  cursorExample: string,
): { page: number; perPage: number; offset: number } {
  const page = requestedPage ?? 1;
  if (!(Number.isSafeInteger(page) && page >= 1)) {
    throw new ApiError("invalid_field_value", "page must be a whole number from 1.", { param: "page" });
  }
  const perPage = requestedPerPage ?? defaultPerPage;
  if (!(Number.isSafeInteger(perPage) && perPage >= 1 && perPage <= OFFSET_MAX_PER_PAGE)) {
    throw new ApiError("invalid_limit", `per_page must be a whole number from 1 to ${OFFSET_MAX_PER_PAGE}.`, {
      param: "per_page",
    });
  }
  const window = page * perPage;
  if (page > OFFSET_MAX_PAGE || window > OFFSET_MAX_WINDOW) {
    throw new ApiError(
      "legacy_offset_pagination_limit_exceeded",
      `Offset pagination reaches at most page ${OFFSET_MAX_PAGE} and ${OFFSET_MAX_WINDOW} rows (page × per_page); ` +
        "use cursor pagination (limit with after/before) to go further.",
      {
        param: "page",
        extra: {
          requested_page: page,
          requested_per_page: perPage,
          requested_window: window,
          max_page: OFFSET_MAX_PAGE,
          max_window: OFFSET_MAX_WINDOW,
          cursor_example: cursorExample,
        },
      },
    );
  }
  return { page, perPage, offset: (page - 1) * perPage };
}
