import type { Generated } from "kysely";

/**
 * Kysely table types, shared by both dialects. Timestamps are milliseconds
 * since the epoch (INTEGER on SQLite, BIGINT on PostgreSQL); booleans are 0/1;
 * JSON documents are TEXT. Rendering to ISO strings happens in the mappers.
 */
export interface Database {
  settings: SettingsTable;
  organizations: OrganizationsTable;
  api_keys: ApiKeysTable;
  accounts: AccountsTable;
  contacts: ContactsTable;
  labels: LabelsTable;
  contact_labels: ContactLabelsTable;
  customers: CustomersTable;
  inbound_receipts: InboundReceiptsTable;
  contact_counts: ContactCountsTable;
  imports: ImportsTable;
  import_chunks: ImportChunksTable;
  import_errors: ImportErrorsTable;
  import_created: ImportCreatedTable;
  idempotency_keys: IdempotencyKeysTable;
}

export interface SettingsTable {
  key: string;
  value: string;
}

export interface OrganizationsTable {
  id: string;
  name: string;
  read_per_minute: number | null;
  write_per_minute: number | null;
  created_at: number;
  updated_at: number;
}

export interface ApiKeysTable {
  id: string;
  organization_id: string;
  key_hash: string;
  last4: string;
  label: string | null;
  expires_at: number | null;
  revoked_at: number | null;
  created_at: number;
}

export type AccountStatus = "connected" | "disconnected" | "onboarding";

export interface AccountsTable {
  id: string;
  organization_id: string;
  phone_number_id: string;
  phone_number: string;
  name: string | null;
  status: AccountStatus;
  created_at: number;
  updated_at: number;
}

export type ContactSource = "api" | "import" | "inbound";

export interface ContactsTable {
  /** SQLite only: the stable rowid the FTS5 index refers to. */
  seq: Generated<number>;
  id: string;
  organization_id: string;
  account_id: string;
  phone_number: string | null;
  business_scoped_user_id: string | null;
  parent_business_scoped_user_id: string | null;
  username: string | null;
  profile_name: string | null;
  display_name: string | null;
  email: string | null;
  /** JSON object, flat. */
  metadata: string;
  source: ContactSource;
  marketing_opt_out: number;
  /** Timestamp (ms) of the newest marketing preference event applied. */
  marketing_opt_out_at: number | null;
  /** Lower-cased searchable fields joined by U+001F; maintained by the contacts repository. */
  search_text: string;
  /** The customer (platform surface) this contact is linked to, if any. */
  customer_id: string | null;
  created_at: number;
  updated_at: number;
}

export interface LabelsTable {
  id: string;
  organization_id: string;
  name: string;
  name_lower: string;
  color: string;
  created_at: number;
  updated_at: number;
}

export interface ContactLabelsTable {
  contact_id: string;
  label_id: string;
  created_at: number;
}

/** Kapso-style customers (platform surface); ids are lower-case UUIDs. */
export interface CustomersTable {
  id: string;
  organization_id: string;
  name: string;
  external_customer_id: string | null;
  created_at: number;
  updated_at: number;
}

/** One applied Meta webhook change (spec §6), so that a redelivery is skipped. */
export interface InboundReceiptsTable {
  /** SHA-256 (hex) of the change's field and value. */
  digest: string;
  account_id: string;
  received_at: number;
}

/**
 * Maintained contact counts: rows per account (PostgreSQL: up to 16 shards
 * per account, summed), written only by triggers on contacts (migration 0006).
 */
export interface ContactCountsTable {
  organization_id: string;
  account_id: string;
  shard: number;
  n: number;
}

export type ImportFormat = "csv" | "ndjson";
export type ImportMode = "create" | "upsert";
export type ImportStatus = "queued" | "running" | "completed" | "failed";

export interface ImportsTable {
  id: string;
  organization_id: string;
  account_id: string;
  format: ImportFormat;
  mode: ImportMode;
  status: ImportStatus;
  size_bytes: number;
  chunk_count: number;
  total_rows: number;
  /** Rows committed so far: the checkpoint a resumed import starts after. */
  processed_rows: number;
  created: number;
  updated: number;
  unchanged: number;
  failed_rows: number;
  /** Why a failed import stopped (not a row error). */
  failure: string | null;
  /** Times a runner claimed it; an import interrupted too often is failed. */
  attempts: number;
  lease_owner: string | null;
  lease_until: number | null;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  completed_at: number | null;
}

/** The uploaded file, in order; `upload_id` is the import's id (chunks are written before the import row). */
export interface ImportChunksTable {
  upload_id: string;
  seq: number;
  data: Uint8Array;
  created_at: number;
}

export interface ImportErrorsTable {
  import_id: string;
  row_no: number;
  line: number;
  code: string;
  message: string;
  param: string | null;
}

/** Contacts an import created, so that a later duplicate row of the same file merges (mode create). */
export interface ImportCreatedTable {
  import_id: string;
  contact_id: string;
}

export interface IdempotencyKeysTable {
  organization_id: string;
  idempotency_key: string;
  /** sha256 (hex) of method, path and canonical JSON body. */
  fingerprint: string;
  /** The request that claimed the key; its id in the stored body is replaced on replay. */
  request_id: string;
  /** Null only inside the claiming transaction, never in a committed row. */
  kind: "response" | "error" | null;
  status: number | null;
  /** JSON object of the response headers the handler set. */
  headers: string | null;
  /** The serialized response body (kind "response") or the coded error (kind "error"), as JSON. */
  body: string | null;
  created_at: number;
  expires_at: number;
}
