import { createHash, randomBytes } from "node:crypto";
import { ApiError, notFound } from "../errors.ts";
import { newId } from "../ids.ts";
import * as keys from "../store/repositories/api-keys.ts";
import { type Erased, eraseOrganization } from "../store/repositories/erasure.ts";
import * as orgs from "../store/repositories/organizations.ts";
import type { Executor } from "../store/store.ts";
import { now } from "./clock.ts";

export const KEY_PREFIX = "pb_live_";
export const DEFAULT_RATE_LIMITS = { read_per_minute: 600, write_per_minute: 60 } as const;

export interface RateLimits {
  read_per_minute: number;
  write_per_minute: number;
}

/** sha256 of the whole key: keys carry 192 random bits, so a fast hash is the right one. */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

export function generateApiKey(): string {
  return KEY_PREFIX + randomBytes(24).toString("base64url"); // 32 URL-safe characters, 192 bits
}

export function rateLimitsOf(org: orgs.OrganizationRow): RateLimits {
  return {
    read_per_minute: org.read_per_minute ?? DEFAULT_RATE_LIMITS.read_per_minute,
    write_per_minute: org.write_per_minute ?? DEFAULT_RATE_LIMITS.write_per_minute,
  };
}

export async function createOrganization(
  db: Executor,
  input: { name: string },
): Promise<orgs.OrganizationRow> {
  const at = now();
  const row = {
    id: newId("org"),
    name: input.name,
    read_per_minute: null,
    write_per_minute: null,
    created_at: at,
    updated_at: at,
  };
  await orgs.insertOrganization(db, row);
  return row;
}

export async function requireOrganization(db: Executor, id: string): Promise<orgs.OrganizationRow> {
  const org = await orgs.findOrganization(db, id);
  if (!org) throw notFound("organization", "org_id");
  return org;
}

export async function updateOrganization(
  db: Executor,
  id: string,
  input: { name?: string | undefined; rate_limits?: Partial<RateLimits> | null | undefined },
): Promise<orgs.OrganizationRow> {
  const org = await requireOrganization(db, id);
  const patch: Partial<orgs.OrganizationRow> = {};
  if (input.name !== undefined) patch.name = input.name;
  if (input.rate_limits === null) {
    patch.read_per_minute = null;
    patch.write_per_minute = null;
  } else if (input.rate_limits) {
    if (input.rate_limits.read_per_minute !== undefined)
      patch.read_per_minute = input.rate_limits.read_per_minute;
    if (input.rate_limits.write_per_minute !== undefined)
      patch.write_per_minute = input.rate_limits.write_per_minute;
  }
  if (Object.keys(patch).length === 0) return org;
  patch.updated_at = now();
  return (await orgs.updateOrganization(db, id, patch)) ?? org;
}

export interface CreatedApiKey {
  row: keys.ApiKeyRow;
  /** The plaintext key: returned once, never stored. */
  key: string;
}

export async function createApiKey(
  db: Executor,
  organizationId: string,
  input: { label?: string | null | undefined; expires_at?: number | null | undefined },
): Promise<CreatedApiKey> {
  await requireOrganization(db, organizationId);
  if (input.expires_at != null && input.expires_at <= now()) {
    throw new ApiError("invalid_field_value", "expires_at must be in the future.", { param: "expires_at" });
  }
  const key = generateApiKey();
  const row: keys.ApiKeyRow = {
    id: newId("key"),
    organization_id: organizationId,
    key_hash: hashApiKey(key),
    last4: key.slice(-4),
    label: input.label ?? null,
    expires_at: input.expires_at ?? null,
    revoked_at: null,
    created_at: now(),
  };
  await keys.insertApiKey(db, row);
  return { row, key };
}

export async function revokeApiKey(db: Executor, id: string): Promise<keys.ApiKeyRow> {
  const row = await keys.findApiKey(db, id);
  if (!row) throw notFound("API key", "key_id");
  if (row.revoked_at === null) {
    const at = now();
    await keys.revokeApiKey(db, id, at);
    return { ...row, revoked_at: at };
  }
  return row;
}

/** An organisation's API keys, newest first (a keyset page). */
export async function listApiKeysOf(
  db: Executor,
  organizationId: string,
  page: { limit: number; after?: { created_at: number; id: string } | undefined },
): Promise<keys.ApiKeyRow[]> {
  await requireOrganization(db, organizationId);
  return keys.listApiKeys(db, organizationId, page);
}

/**
 * Erases an organisation and every piece of its data (docs/deploying.md,
 * "Removing data"); the caller owns the transaction. Its API keys stop
 * working at once (callers forget the authenticator's cache of it).
 */
export async function deleteOrganization(tx: Executor, id: string): Promise<Erased> {
  await requireOrganization(tx, id);
  return eraseOrganization(tx, id);
}
