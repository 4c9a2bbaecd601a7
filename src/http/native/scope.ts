import type { FastifyRequest } from "fastify";
import { requireAccountByPhoneNumberId } from "../../domain/accounts.ts";
import type { Scope } from "../../domain/contacts.ts";
import type { AccountRow } from "../../store/repositories/accounts.ts";
import type { Executor } from "../../store/store.ts";
import { principalOf } from "../auth.ts";

/** The domain scope of an authenticated request: its organisation, on `db` (a transaction) or the store. */
export function scopeOf(request: FastifyRequest, db: Executor = request.server.services.store.db): Scope {
  return {
    db,
    dialect: request.server.services.store.dialect,
    organizationId: principalOf(request).organization.id,
  };
}

/** The account an account-scoped path names (`/:phone_number_id/…`); undefined on org-level paths. */
export async function pathAccountOf(request: FastifyRequest, scope: Scope): Promise<AccountRow | undefined> {
  const params = request.params as { phone_number_id?: string };
  if (params.phone_number_id === undefined) return undefined;
  return requireAccountByPhoneNumberId(scope.db, scope.organizationId, params.phone_number_id);
}
