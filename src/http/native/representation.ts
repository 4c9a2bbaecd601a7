import { Type } from "typebox";
import { toIso } from "../../domain/clock.ts";
import {
  METADATA_DESCRIPTION,
  type MetadataValue,
  parseStoredMetadata,
} from "../../domain/contact-fields.ts";
import type { ContactView } from "../../domain/contacts.ts";
import { phoneDigits } from "../../domain/phone.ts";
import { NullableString, Timestamp } from "../schemas.ts";

export const LabelRefSchema = Type.Object({ id: Type.String(), name: Type.String(), color: Type.String() });

/** Any JSON value: serialized as stored (nested objects and arrays included). */
const MetadataValueSchema = Type.Unsafe<MetadataValue>({});

export const MetadataSchema = Type.Record(Type.String(), MetadataValueSchema, {
  description: METADATA_DESCRIPTION,
});

/** The native contact representation (spec §1). */
export const ContactSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("contact"),
    phone_number: NullableString(),
    name: NullableString(),
    email: NullableString(),
    metadata: MetadataSchema,
    labels: Type.Array(LabelRefSchema),
    whatsapp_account: Type.Object({ phone_number: Type.String(), phone_number_id: Type.String() }),
    wa_id: NullableString(),
    business_scoped_user_id: NullableString(),
    parent_business_scoped_user_id: NullableString(),
    username: NullableString(),
    profile_name: NullableString(),
    display_name: NullableString(),
    source: Type.Union([Type.Literal("api"), Type.Literal("import"), Type.Literal("inbound")]),
    marketing_opt_out: Type.Boolean(),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: "Contact" },
);

export function contactOut(view: ContactView) {
  return {
    id: view.id,
    object: "contact" as const,
    phone_number: view.phone_number,
    name: view.display_name ?? view.profile_name,
    email: view.email,
    metadata: parseStoredMetadata(view.metadata),
    labels: view.labels,
    whatsapp_account: {
      phone_number: view.account_phone_number,
      phone_number_id: view.account_phone_number_id,
    },
    wa_id: phoneDigits(view.phone_number),
    business_scoped_user_id: view.business_scoped_user_id,
    parent_business_scoped_user_id: view.parent_business_scoped_user_id,
    username: view.username,
    profile_name: view.profile_name,
    display_name: view.display_name,
    source: view.source,
    marketing_opt_out: view.marketing_opt_out === 1,
    created_at: toIso(view.created_at),
    updated_at: toIso(view.updated_at),
  };
}
