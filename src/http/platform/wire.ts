import type { ContactFilters } from "../../domain/contacts.ts";
import type { FieldNames } from "../../errors.ts";
import { instantOf } from "../schemas.ts";

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

/** The contact filters of a Kapso list query. */
export interface KapsoListQuery {
  wa_id?: string | undefined;
  wa_id_contains?: string | undefined;
  has_customer?: boolean | undefined;
  customer_id?: string | undefined;
  customer_external_id?: string | undefined;
  profile_name_contains?: string | undefined;
  business_scoped_user_id?: string | undefined;
  created_after?: string | undefined;
  created_before?: string | undefined;
}

/** A Kapso list query as the domain's filters. */
export function kapsoFilters(query: KapsoListQuery): ContactFilters {
  const { wa_id, wa_id_contains, created_after, created_before, ...same } = query;
  return {
    ...same,
    phone: wa_id,
    phone_contains: wa_id_contains,
    created_after: created_after === undefined ? undefined : instantOf(created_after),
    created_before: created_before === undefined ? undefined : instantOf(created_before),
  };
}
