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
  /** SQLite only (migration 0012): created_at bounds per block of 4,096 contact rowids. */
  contact_seq_blocks: ContactSeqBlocksTable;
  imports: ImportsTable;
  import_chunks: ImportChunksTable;
  import_errors: ImportErrorsTable;
  import_created: ImportCreatedTable;
  idempotency_keys: IdempotencyKeysTable;
  event_sequences: EventSequencesTable;
  events: EventsTable;
  webhook_subscriptions: WebhookSubscriptionsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_attempts: WebhookAttemptsTable;
  contact_identity_changes: ContactIdentityChangesTable;
  merges: MergesTable;
  duplicate_pairs: DuplicatePairsTable;
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
  /** ISO 3166-1 alpha-2 (upper case): the country local-format phone numbers of its contacts are read in. */
  default_country: Generated<string | null>;
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
  /** Set on a merged-away contact (a tombstone): the survivor it was merged into (docs/merge.md). */
  merged_into: Generated<string | null>;
  /** The merge that made this contact a tombstone. */
  merge_id: Generated<string | null>;
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
export interface ContactSeqBlocksTable {
  block: number;
  min_created_at: number;
  max_created_at: number;
}

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

/** The last event sequence number taken per organisation (inside the writing transaction). */
export interface EventSequencesTable {
  organization_id: string;
  last_seq: number;
}

/** The outbox (spec §7): one row per event, written in the transaction of the change. */
export interface EventsTable {
  id: string;
  organization_id: string;
  /** Per-organisation order, taken in the writing transaction: commits in this order. */
  seq: number;
  type: string;
  contact_id: string | null;
  /** JSON of the envelope's `data`. */
  data: string;
  created_at: number;
}

export interface WebhookSubscriptionsTable {
  id: string;
  organization_id: string;
  url: string;
  description: string | null;
  /** JSON array of event types; `["*"]` for all. */
  events: string;
  /** 1: per-contact events of imports are delivered too (otherwise only import.completed). */
  include_import_contacts: number;
  enabled: number;
  /** `whsec_<base64>`; the HMAC key is the decoded bytes. */
  secret: string;
  /** The secret before the last rotation, which signs alongside until it expires. */
  previous_secret: string | null;
  previous_secret_expires_at: number | null;
  /** First failed attempt since the last success; failing long enough disables the endpoint. */
  failing_since: number | null;
  disabled_at: number | null;
  disabled_reason: string | null;
  created_at: number;
  updated_at: number;
}

export type DeliveryStatus = "pending" | "succeeded" | "failed" | "canceled";

export interface WebhookDeliveriesTable {
  id: string;
  organization_id: string;
  subscription_id: string;
  event_id: string;
  event_seq: number;
  event_type: string;
  /** Deliveries of one key to one endpoint go out in event_seq order, one at a time. */
  ordering_key: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: number;
  lease_owner: string | null;
  lease_until: number | null;
  last_status_code: number | null;
  last_error: string | null;
  replay_of: string | null;
  created_at: number;
  updated_at: number;
  completed_at: number | null;
}

export interface WebhookAttemptsTable {
  delivery_id: string;
  attempt: number;
  started_at: number;
  duration_ms: number;
  status_code: number | null;
  error: string | null;
  /** The first 1 KiB of the response body. */
  response_body: string | null;
}
/** One identity change Meta reported for a contact (phone number or BSUID), newest last. */
export interface ContactIdentityChangesTable {
  id: string;
  contact_id: string;
  kind: "user_changed_number" | "user_changed_user_id";
  previous_phone_number: string | null;
  phone_number: string | null;
  previous_business_scoped_user_id: string | null;
  business_scoped_user_id: string | null;
  created_at: number;
}

/** One merge of contacts into a survivor (docs/merge.md), with what its undo needs. */
export interface MergesTable {
  id: string;
  organization_id: string;
  survivor_id: string;
  /** JSON array of the merged-away contact ids, in request order. */
  merged_ids: string;
  /** JSON object: field → contact id, as requested. */
  prefer: string;
  /** JSON object: the survivor's columns before the merge. */
  survivor_before: string;
  /** JSON object: the survivor's columns the merge set (and their new values). */
  survivor_after: string;
  /** JSON array of label ids the merge attached to the survivor. */
  labels_added: string;
  created_at: number;
  undo_until: number;
  undone_at: number | null;
}

/** A candidate pair of duplicate contacts, maintained by triggers (docs/merge.md); contact_a < contact_b. */
export interface DuplicatePairsTable {
  /** `contact_a.contact_b`. */
  id: string;
  organization_id: string;
  contact_a: string;
  contact_b: string;
  account_a: string;
  account_b: string;
  detected_at: number;
}
