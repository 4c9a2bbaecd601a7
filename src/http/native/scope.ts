import type { FastifyReply, FastifyRequest } from "fastify";
import { type TObject, type TOptional, type TProperties, type TString, Type } from "typebox";
import { requireAccountByPhoneNumberId } from "../../domain/accounts.ts";
import type { Scope } from "../../domain/contacts.ts";
import { contactIdOf, isUuid } from "../../ids.ts";
import type { AccountRow } from "../../store/repositories/accounts.ts";
import { PhoneNumberId } from "../schemas.ts";

/** The account an account-scoped path names (`/:phone_number_id/…`); undefined on org-level paths. */
export async function pathAccountOf(
  scope: Scope,
  phoneNumberId: string | undefined,
): Promise<AccountRow | undefined> {
  if (phoneNumberId === undefined) return undefined;
  return requireAccountByPhoneNumberId(scope.db, scope.organizationId, phoneNumberId);
}

/**
 * preValidation hook of the routes with a contact id in the path: an id
 * given in its UUID form (as the Kapso surfaces show it) is read as
 * `ctc_<ULID>`.
 */
export function contactIdInUuidForm(request: FastifyRequest, _reply: FastifyReply, done: () => void): void {
  const params: unknown = request.params;
  if (typeof params === "object" && params !== null) {
    const id: unknown = Reflect.get(params, "id");
    if (typeof id === "string" && isUuid(id)) Reflect.set(params, "id", contactIdOf(id));
  }
  done();
}

/** `from` of a create on the org-level path: the account, by its E.164 number or phone_number_id. */
export const FromAccount = Type.Optional(
  Type.String({ maxLength: 40, description: "The account: its E.164 number or phone_number_id" }),
);

/** Path params of a route registered in both path styles: phone_number_id only on the account-scoped one. */
export type StyledParams<P extends TProperties> = TObject<P & { phone_number_id: TOptional<TString> }>;

/**
 * One of kirim.chat's two path styles: org-level (`/contacts…`) and
 * account-scoped (`/:phone_number_id/contacts…`). A route registered for each
 * of `PATH_STYLES` gets one params type for both: `phone_number_id` is a
 * string on the account-scoped path and absent on the other.
 */
export interface PathStyle {
  /** `/contacts` or `/:phone_number_id/contacts`. */
  base: string;
  /** Appended to the route's summary: "" or " (one account)". */
  suffix: string;
  /** The path's params schema: `extra`, and phone_number_id on the account-scoped style. */
  params<P extends TProperties = Record<never, never>>(extra?: P): StyledParams<P>;
  /** Properties only the org-level style has (e.g. `from`, which names the account there); each must be optional. */
  orgLevelOnly<P extends TProperties>(properties: P): P;
}

export const PATH_STYLES: readonly PathStyle[] = [
  {
    base: "/contacts",
    suffix: "",
    params: <P extends TProperties>(extra?: P) => Type.Object({ ...extra }) as unknown as StyledParams<P>,
    orgLevelOnly: (properties) => properties,
  },
  {
    base: "/:phone_number_id/contacts",
    suffix: " (one account)",
    // Required here (it is a path segment); the shared static type says optional, as on the other style.
    params: <P extends TProperties>(extra?: P) =>
      Type.Object({ ...extra, phone_number_id: PhoneNumberId() }) as unknown as StyledParams<P>,
    orgLevelOnly: <P extends TProperties>(_properties: P) => ({}) as P,
  },
];
