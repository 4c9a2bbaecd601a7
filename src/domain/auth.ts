import { timingSafeEqual } from "node:crypto";
import { ApiError } from "../errors.ts";
import type { ApiKeyRow } from "../store/repositories/api-keys.ts";
import { findApiKeyByHash } from "../store/repositories/api-keys.ts";
import { findOrganization, type OrganizationRow } from "../store/repositories/organizations.ts";
import type { Executor } from "../store/store.ts";
import { now } from "./clock.ts";
import { hashApiKey, KEY_PREFIX } from "./organizations.ts";

export interface Principal {
  organization: OrganizationRow;
  apiKey: ApiKeyRow;
}

interface CacheEntry {
  principal: Principal | undefined;
  expires: number;
}

/**
 * Resolves an API key to its organisation. Every request repeats this lookup,
 * so results are cached per process for `ttlMs`; a revocation made through this
 * process is seen at once (`forget`), one made through another process within
 * `ttlMs` (documented in docs/security.md).
 */
export class Authenticator {
  private readonly cache = new Map<string, CacheEntry>();
  /**
   * Presented key → its SHA-256, so a client sending the same key on every
   * request pays the hash once (it was ~3.5 % of a get's server CPU). Holds
   * what the process sees on every request anyway; bounded like the cache.
   */
  private readonly hashes = new Map<string, string>();

  constructor(
    private readonly db: Executor,
    private readonly ttlMs = 5_000,
    private readonly maxEntries = 10_000,
  ) {}

  async authenticate(presented: string | undefined, param: string): Promise<Principal> {
    if (presented === undefined || presented === "") {
      throw new ApiError("missing_api_key", "No API key was given. Send Authorization: Bearer <key>.", {
        param,
      });
    }
    if (!presented.startsWith(KEY_PREFIX) || presented.length > 200) {
      throw new ApiError("invalid_api_key", "The API key is not valid.", { param });
    }
    let hash = this.hashes.get(presented);
    if (hash === undefined) {
      hash = hashApiKey(presented);
      if (this.hashes.size >= this.maxEntries) this.hashes.clear();
      this.hashes.set(presented, hash);
    }
    const principal = await this.lookup(hash);
    // The index finds the row by hash; the comparison that decides is constant-time.
    if (!principal || !constantTimeEqual(principal.apiKey.key_hash, hash)) {
      throw new ApiError("invalid_api_key", "The API key is not valid.", { param });
    }
    const at = now();
    if (principal.apiKey.revoked_at !== null && principal.apiKey.revoked_at <= at) {
      throw new ApiError("revoked_api_key", "The API key has been revoked.", { param });
    }
    if (principal.apiKey.expires_at !== null && principal.apiKey.expires_at <= at) {
      throw new ApiError("expired_api_key", "The API key has expired.", { param });
    }
    return principal;
  }

  /** Drops cached principals of one organisation (after a key revocation or a limits change). */
  forgetOrganization(organizationId: string): void {
    for (const [hash, entry] of this.cache) {
      if (entry.principal?.organization.id === organizationId) this.cache.delete(hash);
    }
  }

  private async lookup(hash: string): Promise<Principal | undefined> {
    const at = now();
    const cached = this.cache.get(hash);
    if (cached && cached.expires > at) return cached.principal;
    const apiKey = await findApiKeyByHash(this.db, hash);
    const organization = apiKey ? await findOrganization(this.db, apiKey.organization_id) : undefined;
    const principal = apiKey && organization ? { apiKey, organization } : undefined;
    if (this.cache.size >= this.maxEntries) this.cache.clear();
    this.cache.set(hash, { principal, expires: at + this.ttlMs });
    return principal;
  }
}

export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
