import type { Static } from "typebox";
import type { ContactFilters, Scope } from "../../domain/contacts.ts";
import { labelFilterId } from "../../domain/labels.ts";
import type { FieldNames } from "../../errors.ts";
import { instantOf } from "../schemas.ts";
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

/** A native list query as the domain's filters, its `label` taken as given (an id). */
export function nativeFilters(query: NativeListQuery): ContactFilters {
  const { created_after, created_before, updated_after, ...same } = query;
  return {
    ...same,
    created_after: created_after === undefined ? undefined : instantOf(created_after),
    created_before: created_before === undefined ? undefined : instantOf(created_before),
    updated_after: updated_after === undefined ? undefined : instantOf(updated_after),
  };
}

/** A native list query as the domain's filters; `label` takes a label id or name (docs/labels.md). */
export async function resolveNativeFilters(scope: Scope, query: NativeListQuery): Promise<ContactFilters> {
  const filters = nativeFilters(query);
  if (query.label !== undefined) filters.label = await labelFilterId(scope, query.label);
  return filters;
}
