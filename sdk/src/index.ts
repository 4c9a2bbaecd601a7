/**
 * @phonebook/client: a typed client for the Phonebook API.
 * See docs/sdk.md in the Phonebook repository.
 */
export {
  type Account,
  type BatchResult,
  type BulkLabel,
  type BulkLabelResult,
  type Contact,
  type ContactBatch,
  type ContactCreate,
  type ContactFilters,
  type ContactUpdate,
  type DeletedContact,
  type Import,
  type Label,
  type LabelCreate,
  type LabelUpdate,
  type Me,
  type Page,
  PageIterator,
  Phonebook,
  type PhonebookOptions,
  type ResponseOf,
  type WriteOptions,
} from "./client.ts";
export { type ErrorBody, type KnownErrorCode, PhonebookConnectionError, PhonebookError } from "./errors.ts";
export { type RetryHooks, type RetryOptions, retryingFetch } from "./retry.ts";
export type { components, paths } from "./schema.ts";
export {
  type VerifyOptions,
  verifyWebhook,
  type WebhookEvent,
  type WebhookHeaders,
  WebhookVerificationError,
} from "./webhooks.ts";
