/**
 * Driver errors translated once, at the store's edge. Both drivers report a
 * unique violation differently; callers only ask which constraint it was.
 */
interface DriverError {
  code?: unknown;
  constraint?: unknown;
  message?: unknown;
}

/** The unique index a violation names ("contacts_account_phone"), or undefined if it is not one. */
export function uniqueViolation(error: unknown): { index: string; columns: string } | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const e = error as DriverError;
  if (e.code === "23505") {
    return { index: String(e.constraint ?? ""), columns: "" };
  }
  if (e.code === "SQLITE_CONSTRAINT_UNIQUE" || e.code === "SQLITE_CONSTRAINT_PRIMARYKEY") {
    // "UNIQUE constraint failed: contacts.account_id, contacts.phone_number"
    const columns = String(e.message ?? "").replace(/^.*constraint failed:\s*/, "");
    return { index: "", columns };
  }
  return undefined;
}

/**
 * True when a transaction lost a race and may simply be run again: a unique
 * violation (another writer took the identity first), a PostgreSQL
 * serialization failure or deadlock, or SQLite busy (another process holds
 * the write lock, or wrote after this transaction's snapshot).
 */
export function isRetryableConflict(error: unknown): boolean {
  if (uniqueViolation(error)) return true;
  if (typeof error !== "object" || error === null) return false;
  const code = (error as DriverError).code;
  // SQLITE_BUSY_SNAPSHOT: another process wrote after this transaction's snapshot (WAL).
  return code === "40001" || code === "40P01" || (typeof code === "string" && code.startsWith("SQLITE_BUSY"));
}

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "53300", // too_many_connections
  "SQLITE_BUSY",
  "SQLITE_LOCKED",
]);

/** True when the store could not be reached or is temporarily refusing work (→ 503). */
export function isStoreUnavailable(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const e = error as DriverError;
  const code = typeof e.code === "string" ? e.code : "";
  if (CONNECTION_CODES.has(code) || code.startsWith("08")) return true;
  const message = typeof e.message === "string" ? e.message : "";
  return (
    message.includes("Connection terminated") ||
    message.includes("timeout exceeded when trying to connect") ||
    message.includes("Client has encountered a connection error") ||
    message.includes("driver has already been destroyed") ||
    // node-pg's own query_timeout: no answer came (a partition, an overloaded server).
    message === "Query read timeout" ||
    // statement_timeout: PostgreSQL cancelled a statement that ran too long.
    e.code === "57014"
  );
}

/** True when a statement gave up waiting for a lock (PostgreSQL `lock_timeout`, SQLSTATE 55P03). */
export function isLockTimeout(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  return (error as DriverError).code === "55P03";
}

/**
 * True when the store refused a value it cannot hold as text (PostgreSQL
 * rejects NUL bytes and invalid UTF-8: 22021, 22P05). Such a value can only
 * come from the request, so it is the client's error (400), not ours.
 */
export function isUnstorableText(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const code = (error as DriverError).code;
  return code === "22021" || code === "22P05";
}
