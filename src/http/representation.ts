import { Type } from "typebox";
import { toIso } from "../domain/clock.ts";
import type { AccountRow } from "../store/repositories/accounts.ts";
import type { OrganizationRow } from "../store/repositories/organizations.ts";
import { NullableString, Timestamp } from "./schemas.ts";

export const AccountSchema = Type.Object(
  {
    object: Type.Literal("account"),
    id: Type.String(),
    phone_number_id: Type.String(),
    phone_number: Type.String(),
    name: NullableString(),
    status: Type.Union([Type.Literal("connected"), Type.Literal("disconnected"), Type.Literal("onboarding")]),
    default_country: NullableString({
      description:
        "ISO 3166-1 alpha-2 country local-format phone numbers (0812…) of its contacts are read in; null: only international numbers",
    }),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: "Account" },
);

export function accountOut(row: AccountRow) {
  return {
    object: "account" as const,
    id: row.id,
    phone_number_id: row.phone_number_id,
    phone_number: row.phone_number,
    name: row.name,
    status: row.status,
    default_country: row.default_country,
    created_at: toIso(row.created_at),
    updated_at: toIso(row.updated_at),
  };
}

export const OrganizationSchema = Type.Object(
  {
    object: Type.Literal("organization"),
    id: Type.String(),
    name: Type.String(),
    rate_limits: Type.Object({ read_per_minute: Type.Integer(), write_per_minute: Type.Integer() }),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: "Organization" },
);

export function organizationOut(
  row: OrganizationRow,
  limits: { read_per_minute: number; write_per_minute: number },
) {
  return {
    object: "organization" as const,
    id: row.id,
    name: row.name,
    rate_limits: limits,
    created_at: toIso(row.created_at),
    updated_at: toIso(row.updated_at),
  };
}
