import type { ContactFilters } from "../../domain/contacts.ts";
import { ApiError, type FieldNames } from "../../errors.ts";

/**
 * Where Kapso's words meet the domain's (platform and graph surfaces): the
 * wire names of the domain's fields, for error `param`s and messages, and
 * the list query as the domain's filters.
 */
export const KAPSO_FIELDS: FieldNames = {
  phone_number: "wa_id",
  phone: "wa_id",
  phone_contains: "wa_id_contains",
  label_ids: "labels",
};

/** Kapso's booleans in a query string: `true` or `false`. */
export function queryBoolean(value: string | undefined, param: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === "true") return true;
  if (value === "false") return false;
  throw new ApiError("invalid_field_value", `${param} must be true or false.`, { param });
}

/** The contact filters of a Kapso list query. */
export interface KapsoListQuery {
  wa_id?: string | undefined;
  wa_id_contains?: string | undefined;
  has_customer?: string | undefined;
  customer_id?: string | undefined;
  customer_external_id?: string | undefined;
  profile_name_contains?: string | undefined;
  business_scoped_user_id?: string | undefined;
  created_after?: string | undefined;
  created_before?: string | undefined;
}

/** A Kapso list query as the domain's filters. */
export function kapsoFilters(query: KapsoListQuery): ContactFilters {
  const { wa_id, wa_id_contains, has_customer, ...same } = query;
  return {
    ...same,
    phone: wa_id,
    phone_contains: wa_id_contains,
    has_customer: queryBoolean(has_customer, "has_customer"),
  };
}
