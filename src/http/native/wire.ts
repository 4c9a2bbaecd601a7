import type { Static } from "typebox";
import type { ContactFilters } from "../../domain/contacts.ts";
import type { FieldNames } from "../../errors.ts";
import type { ListQuery } from "./contacts.ts";

/**
 * Where kirim.chat's words (the native `/v1` surface) meet the domain's: the
 * wire names of the domain's fields, for error `param`s and messages, and the
 * list query as the domain's filters. Import files use the same names.
 */
export const NATIVE_FIELDS: FieldNames = {
  display_name: "name",
  label_ids: "labels",
  // A merge's `prefer` keys (docs/merge.md).
  "prefer.display_name": "prefer.name",
};

/** The contact filters of a native list (or export) query, as its schema types them. */
export type NativeListQuery = Omit<Static<typeof ListQuery>, "limit" | "cursor">;

/** A native list query as the domain's filters. */
export function nativeFilters(query: NativeListQuery): ContactFilters {
  const { marketing_opt_out, ...same } = query;
  return {
    ...same,
    marketing_opt_out: marketing_opt_out === undefined ? undefined : marketing_opt_out === "true",
  };
}
