import type { ContactFilters } from "../../domain/contacts.ts";
import type { FieldNames } from "../../errors.ts";

/**
 * Where kirim.chat's words (the native `/v1` surface) meet the domain's: the
 * wire names of the domain's fields, for error `param`s and messages, and the
 * list query as the domain's filters. Import files use the same names.
 */
export const NATIVE_FIELDS: FieldNames = { display_name: "name", label_ids: "labels" };

/** The contact filters of a native list (or export) query. */
export interface NativeListQuery {
  phone?: string | undefined;
  search?: string | undefined;
  label?: string | undefined;
  created_after?: string | undefined;
  created_before?: string | undefined;
  updated_after?: string | undefined;
  marketing_opt_out?: "true" | "false" | undefined;
}

/** A native list query as the domain's filters. */
export function nativeFilters(query: NativeListQuery): ContactFilters {
  const { marketing_opt_out, ...same } = query;
  return {
    ...same,
    marketing_opt_out: marketing_opt_out === undefined ? undefined : marketing_opt_out === "true",
  };
}
