import { newId } from "../ids.ts";
import type { ContactRow } from "../store/repositories/contacts.ts";
import { insertIdentityChange } from "../store/repositories/identity-history.ts";
import type { Executor } from "../store/store.ts";

/**
 * Records that Meta moved a contact's identity (a new number, or a new
 * business-scoped user id only), when the phone or the BSUID actually changed.
 * Called inside the transaction that applied the move.
 */
export async function recordIdentityChange(
  db: Executor,
  before: Pick<ContactRow, "id" | "phone_number" | "business_scoped_user_id">,
  after: Pick<ContactRow, "phone_number" | "business_scoped_user_id">,
  at: number,
): Promise<void> {
  if (
    before.phone_number === after.phone_number &&
    before.business_scoped_user_id === after.business_scoped_user_id
  ) {
    return;
  }
  await insertIdentityChange(db, {
    id: newId("idh"),
    contact_id: before.id,
    kind: before.phone_number !== after.phone_number ? "user_changed_number" : "user_changed_user_id",
    previous_phone_number: before.phone_number,
    phone_number: after.phone_number,
    previous_business_scoped_user_id: before.business_scoped_user_id,
    business_scoped_user_id: after.business_scoped_user_id,
    created_at: at,
  });
}
