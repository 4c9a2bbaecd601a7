import { existsSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";

/**
 * The Phonebook directory (where package.json is). A relative DATA_DIR is
 * resolved against it, never against the working directory, so the server
 * and the CLI started anywhere use one store (README, "Configuration").
 * Found by walking up, because this file runs from src/ (tsx) and from
 * dist/src/ (`npm start`, the `phonebook` command) alike.
 */
export const PACKAGE_ROOT = packageRoot(import.meta.dirname);

function packageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return dir;
    if (dirname(dir) === dir) return resolve(from, "..");
  }
}

/** Configuration, parsed once from the environment (spec §8). */
export interface Config {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  /** `postgres://…` selects PostgreSQL; undefined selects the embedded SQLite store. */
  readonly databaseUrl: string | undefined;
  readonly redisUrl: string | undefined;
  readonly adminToken: string | undefined;
  readonly cursorSecret: string | undefined;
  readonly metaAppSecret: string | undefined;
  readonly metaVerifyToken: string | undefined;
  readonly logLevel: LogLevel;
  /** Prefix of every Redis key the server writes (REDIS_KEY_PREFIX), so installations can share a Redis. */
  readonly redisKeyPrefix: string;
  /**
   * Longest a PostgreSQL statement may take (DATABASE_QUERY_TIMEOUT_MS, ms):
   * enforced by the server (statement_timeout) and by the client, so a
   * network partition fails requests with 503 instead of holding them.
   */
  readonly databaseQueryTimeoutMs: number;
  /** PostgreSQL only: most connections this process opens (DATABASE_POOL_SIZE). */
  readonly databasePoolSize: number;
  /**
   * PostgreSQL only: longest a request waits for a free pooled connection
   * (DATABASE_POOL_TIMEOUT_MS, ms); past it the request gets 503, so an
   * overloaded process sheds load instead of queueing without bound.
   */
  readonly databasePoolTimeoutMs: number;
  /**
   * The server's public base URL (PUBLIC_URL, e.g. `https://contacts.example.com`):
   * absolute links (`paging.next`, `Link`) are built on it. Unset: links are
   * relative (path and query). The request's Host and X-Forwarded-Host are never used.
   */
  readonly publicUrl: string | undefined;
  /** Most connections one process holds open at once (HTTP_MAX_CONNECTIONS); more are refused. */
  readonly httpMaxConnections: number;
  /** Longest a client may take to send the request headers (HTTP_HEADERS_TIMEOUT_MS). */
  readonly httpHeadersTimeoutMs: number;
  /** Longest a request body may pause between two bytes (HTTP_BODY_IDLE_TIMEOUT_MS). */
  readonly httpBodyIdleTimeoutMs: number;
  /** Longest a whole request body may take, file imports excepted (HTTP_BODY_TIMEOUT_MS). */
  readonly httpBodyTimeoutMs: number;
  /** Bearer token of GET /metrics (METRICS_TOKEN); metrics are off when neither it nor metricsPort is set. */
  readonly metricsToken: string | undefined;
  /** A separate port serving only GET /metrics (METRICS_PORT); set, /metrics is not on the API port. */
  readonly metricsPort: number | undefined;
  /** Bind address of the metrics port (METRICS_HOST, default HOST). */
  readonly metricsHost: string;
  /** Outbound webhooks (docs/webhooks.md). */
  readonly webhooks: WebhooksConfig;
  /**
   * PostgreSQL only (DATABASE_PREPARED_STATEMENTS, default on): the hottest
   * lookups (a contact by id, an API key, an organisation, an identity) run
   * as named prepared statements, planned once per connection. Turn off
   * behind a pooler that cannot carry them (PgBouncer < 1.21, or any version
   * without max_prepared_statements, in transaction mode).
   */
  readonly databasePreparedStatements: boolean;
  /**
   * OpenTelemetry tracing (docs/operations.md, "Tracing"), off unless an OTLP
   * endpoint or OTEL_TRACES_EXPORTER says otherwise. Off, the SDK is never loaded.
   */
  readonly tracing: TracingConfig | undefined;
  /**
   * HEAP_GROWTH_PERCENT (default 50; 0 = V8's own rule): how far V8 lets the
   * heap grow past what survived its last full collection. V8's own rule lets
   * a busy process grow it up to 4×: a 1M-contact export, whose garbage is
   * partly promoted, took the server from ~180 to ~340 MB; at 50 % the peak
   * stayed near 200 MB (docs/benchmarks.md). Set by `serve`, for the process.
   */
  readonly heapGrowthPercent: number;
}

export interface TracingConfig {
  /** `otlp`: OTLP/HTTP (JSON) to `url`; `console`: spans printed on stdout (debugging). */
  readonly exporter: "otlp" | "console";
  /** Where OTLP spans go (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces). */
  readonly url: string;
  /** OTEL_SERVICE_NAME (default `phonebook`). */
  readonly serviceName: string;
}

export interface WebhooksConfig {
  /** WEBHOOKS_ALLOW_HTTP: endpoints may be plain http:// (local testing); default https only. */
  readonly allowHttp: boolean;
  /** WEBHOOKS_ALLOW_PRIVATE: endpoints may resolve to private, loopback or link-local addresses. */
  readonly allowPrivate: boolean;
  /** WEBHOOKS_TIMEOUT_MS: longest one attempt may take (default 10 s). */
  readonly timeoutMs: number;
  /** WEBHOOKS_RETRY_SCHEDULE_MS: delay before each attempt, ms (default the §7 schedule of 8 attempts). */
  readonly retryScheduleMs: readonly number[];
  /** EVENTS_RETENTION_DAYS: how long events and deliveries are kept (default 30). */
  readonly eventsRetentionDays: number;
  /** WEBHOOKS_WORKER=false: this process records events but delivers none (another process does). */
  readonly worker: boolean;
  /** WEBHOOKS_POLL_MS: how often an idle worker looks for due deliveries (default 200 ms). */
  readonly pollMs: number;
  /** WEBHOOKS_THREAD=false: deliver in the API's thread instead of a worker thread of its own (either store). */
  readonly thread: boolean;
  /** WEBHOOKS_CONCURRENCY: attempts in flight at once per process, over all endpoints (default 64). */
  readonly concurrency: number;
  /**
   * PostgreSQL: the connection the worker LISTENs on for new deliveries
   * (WEBHOOKS_LISTEN_URL, default DATABASE_URL); undefined when WEBHOOKS_LISTEN=false.
   */
  readonly listenUrl: string | undefined;
  /**
   * WEBHOOKS_LEASE_MS: how long a worker's claim on a delivery lasts; a worker
   * that dies releases its deliveries after this (default twice the timeout + 30 s).
   */
  readonly leaseMs: number;
}

/** Spec §7: immediately, 10 s, 30 s, 2 min, 10 min, 1 h, 6 h, 24 h. */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = [
  0, 10_000, 30_000, 120_000, 600_000, 3_600_000, 21_600_000, 86_400_000,
];

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
const LOG_LEVELS: readonly LogLevel[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** Thrown when a variable has a value the server cannot start with. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`Invalid configuration: ${variable} ${problem}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

function optional(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

function parsePort(env: Env): number {
  const raw = optional(env, "PORT");
  if (raw === undefined) return 3000;
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535) {
    throw new ConfigError("PORT", `must be a whole number from 0 to 65535 (got "${raw}").`);
  }
  return Number(raw);
}

function parseMetricsPort(env: Env): number | undefined {
  const raw = optional(env, "METRICS_PORT");
  if (raw === undefined) return undefined;
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535) {
    throw new ConfigError("METRICS_PORT", `must be a whole number from 0 to 65535 (got "${raw}").`);
  }
  return Number(raw);
}

/** An optional URL whose scheme must be one of `schemes`. */
function parseUrl(env: Env, name: string, schemes: string[], example: string, hint = ""): string | undefined {
  const raw = optional(env, name);
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, `is not a URL; expected ${example}.`);
  }
  if (!schemes.includes(url.protocol)) {
    const allowed = schemes.map((s) => `${s}//`).join(" or ");
    throw new ConfigError(name, `must start with ${allowed} (got "${url.protocol}//")${hint}.`);
  }
  return raw;
}

function parseSecret(env: Env, name: string, minLength: number): string | undefined {
  const raw = optional(env, name);
  if (raw !== undefined && raw.length < minLength) {
    throw new ConfigError(name, `must be at least ${minLength} characters long.`);
  }
  return raw;
}

function parseLogLevel(env: Env): LogLevel {
  const raw = optional(env, "LOG_LEVEL") ?? "info";
  if (!(LOG_LEVELS as readonly string[]).includes(raw)) {
    throw new ConfigError("LOG_LEVEL", `must be one of ${LOG_LEVELS.join(", ")} (got "${raw}").`);
  }
  return raw as LogLevel;
}

function parseRedisKeyPrefix(env: Env): string {
  const raw = optional(env, "REDIS_KEY_PREFIX") ?? "phonebook:";
  if (!/^[\x21-\x7e]{1,100}$/.test(raw)) {
    throw new ConfigError("REDIS_KEY_PREFIX", "must be 1 to 100 printable ASCII characters without spaces.");
  }
  return raw;
}

function parseQueryTimeout(env: Env): number {
  const raw = optional(env, "DATABASE_QUERY_TIMEOUT_MS");
  if (raw === undefined) return 30_000;
  if (!/^\d{1,7}$/.test(raw) || Number(raw) < 100 || Number(raw) > 3_600_000) {
    throw new ConfigError(
      "DATABASE_QUERY_TIMEOUT_MS",
      `must be a whole number of milliseconds from 100 to 3600000 (got "${raw}").`,
    );
  }
  return Number(raw);
}

function parseBoolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = optional(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (["1", "true", "on", "yes"].includes(raw)) return true;
  if (["0", "false", "off", "no"].includes(raw)) return false;
  throw new ConfigError(name, `must be true or false (got "${raw}").`);
}

function parseWholeNumber(
  env: Env,
  name: string,
  fallback: number,
  min: number,
  max: number,
  unit: string,
): number {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d{1,10}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(name, `must be a whole number of ${unit} from ${min} to ${max} (got "${raw}").`);
  }
  return Number(raw);
}

function parseRetrySchedule(env: Env): readonly number[] {
  const raw = optional(env, "WEBHOOKS_RETRY_SCHEDULE_MS");
  if (raw === undefined) return DEFAULT_RETRY_SCHEDULE_MS;
  const parts = raw.split(",").map((p) => p.trim());
  if (parts.length < 1 || parts.length > 20 || parts.some((p) => !/^\d{1,9}$/.test(p))) {
    throw new ConfigError(
      "WEBHOOKS_RETRY_SCHEDULE_MS",
      `must be 1 to 20 comma-separated delays in ms, such as 0,10000,30000 (got "${raw}").`,
    );
  }
  return Object.freeze(parts.map(Number));
}

function parseWebhooks(env: Env): WebhooksConfig {
  const timeoutMs = parseWholeNumber(env, "WEBHOOKS_TIMEOUT_MS", 10_000, 50, 60_000, "milliseconds");
  const leaseMs = parseWholeNumber(
    env,
    "WEBHOOKS_LEASE_MS",
    timeoutMs * 2 + 30_000,
    1000,
    3_600_000,
    "milliseconds",
  );
  if (leaseMs <= timeoutMs) {
    throw new ConfigError("WEBHOOKS_LEASE_MS", `must be longer than WEBHOOKS_TIMEOUT_MS (${timeoutMs}).`);
  }
  return Object.freeze({
    allowHttp: parseBoolean(env, "WEBHOOKS_ALLOW_HTTP", false),
    allowPrivate: parseBoolean(env, "WEBHOOKS_ALLOW_PRIVATE", false),
    timeoutMs,
    retryScheduleMs: parseRetrySchedule(env),
    eventsRetentionDays: parseWholeNumber(env, "EVENTS_RETENTION_DAYS", 30, 1, 3650, "days"),
    worker: parseBoolean(env, "WEBHOOKS_WORKER", true),
    leaseMs,
    pollMs: parseWholeNumber(env, "WEBHOOKS_POLL_MS", 200, 10, 600_000, "milliseconds"),
    thread: parseBoolean(env, "WEBHOOKS_THREAD", true),
    concurrency: parseWholeNumber(env, "WEBHOOKS_CONCURRENCY", 64, 1, 1024, "attempts"),
    listenUrl: parseBoolean(env, "WEBHOOKS_LISTEN", true)
      ? (parseUrl(
          env,
          "WEBHOOKS_LISTEN_URL",
          ["postgres:", "postgresql:"],
          "postgres://user@host:5432/database",
        ) ?? optional(env, "DATABASE_URL"))
      : undefined,
  });
}

/**
 * Tracing, configured by the standard OpenTelemetry variables: on when an
 * OTLP endpoint is set or OTEL_TRACES_EXPORTER is `otlp` or `console`; off
 * by default, with OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true.
 * The exporter itself reads OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT and the
 * certificate variables; the SDK reads OTEL_TRACES_SAMPLER and OTEL_BSP_*.
 */
function parseTracing(env: Env): TracingConfig | undefined {
  if (parseBoolean(env, "OTEL_SDK_DISABLED", false)) return undefined;
  const exporter = optional(env, "OTEL_TRACES_EXPORTER")?.toLowerCase();
  if (exporter !== undefined && !["otlp", "console", "none"].includes(exporter)) {
    throw new ConfigError(
      "OTEL_TRACES_EXPORTER",
      `must be otlp, console or none (got "${exporter}"); other exporters go through an OpenTelemetry Collector.`,
    );
  }
  const otlp = ["http:", "https:"];
  const tracesUrl = parseUrl(
    env,
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    otlp,
    "http://collector:4318/v1/traces",
  );
  const baseUrl = parseUrl(env, "OTEL_EXPORTER_OTLP_ENDPOINT", otlp, "http://collector:4318");
  if (exporter === "none" || (exporter === undefined && tracesUrl === undefined && baseUrl === undefined)) {
    return undefined;
  }
  for (const name of ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"]) {
    const protocol = optional(env, name);
    if (protocol !== undefined && protocol !== "http/json") {
      throw new ConfigError(
        name,
        `must be http/json or unset (got "${protocol}"): Phonebook sends OTLP over HTTP as JSON, which every OTLP/HTTP receiver (port 4318) accepts.`,
      );
    }
  }
  return Object.freeze({
    exporter: exporter === "console" ? "console" : "otlp",
    url:
      tracesUrl ?? (baseUrl ? `${baseUrl.replace(/\/+$/, "")}/v1/traces` : "http://localhost:4318/v1/traces"),
    serviceName: optional(env, "OTEL_SERVICE_NAME") ?? "phonebook",
  });
}

function parsePublicUrl(env: Env): string | undefined {
  const raw = parseUrl(env, "PUBLIC_URL", ["http:", "https:"], "https://contacts.example.com");
  if (raw === undefined) return undefined;
  const url = new URL(raw);
  if (url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") {
    throw new ConfigError("PUBLIC_URL", "must be a base URL without query, fragment or credentials.");
  }
  // Kept without the trailing slash: paths are appended to it.
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

/** Parses and freezes the configuration; throws ConfigError naming the first bad variable. */
export function loadConfig(env: Env = process.env, overrides: Partial<Config> = {}): Config {
  const dataDir = optional(env, "DATA_DIR") ?? "./data";
  const config: Config = {
    port: parsePort(env),
    host: optional(env, "HOST") ?? "127.0.0.1",
    dataDir: isAbsolute(dataDir) ? dataDir : resolve(PACKAGE_ROOT, dataDir),
    databaseUrl: parseUrl(
      env,
      "DATABASE_URL",
      ["postgres:", "postgresql:"],
      "postgres://user@host:5432/database",
      "; leave it unset for the embedded store",
    ),
    redisUrl: parseUrl(env, "REDIS_URL", ["redis:", "rediss:"], "redis://host:6379"),
    adminToken: parseSecret(env, "PHONEBOOK_ADMIN_TOKEN", 16),
    cursorSecret: parseSecret(env, "PHONEBOOK_CURSOR_SECRET", 16),
    metaAppSecret: optional(env, "META_APP_SECRET"),
    metaVerifyToken: optional(env, "META_VERIFY_TOKEN"),
    logLevel: parseLogLevel(env),
    redisKeyPrefix: parseRedisKeyPrefix(env),
    databaseQueryTimeoutMs: parseQueryTimeout(env),
    databasePoolSize: parseWholeNumber(env, "DATABASE_POOL_SIZE", 10, 1, 1000, "connections"),
    databasePoolTimeoutMs: parseWholeNumber(
      env,
      "DATABASE_POOL_TIMEOUT_MS",
      5000,
      100,
      3_600_000,
      "milliseconds",
    ),
    publicUrl: parsePublicUrl(env),
    httpMaxConnections: parseWholeNumber(env, "HTTP_MAX_CONNECTIONS", 1024, 1, 1_000_000, "connections"),
    httpHeadersTimeoutMs: parseWholeNumber(
      env,
      "HTTP_HEADERS_TIMEOUT_MS",
      60_000,
      100,
      600_000,
      "milliseconds",
    ),
    httpBodyIdleTimeoutMs: parseWholeNumber(
      env,
      "HTTP_BODY_IDLE_TIMEOUT_MS",
      30_000,
      100,
      600_000,
      "milliseconds",
    ),
    httpBodyTimeoutMs: parseWholeNumber(env, "HTTP_BODY_TIMEOUT_MS", 60_000, 100, 3_600_000, "milliseconds"),
    metricsToken: parseSecret(env, "METRICS_TOKEN", 16),
    metricsPort: parseMetricsPort(env),
    metricsHost: optional(env, "METRICS_HOST") ?? optional(env, "HOST") ?? "127.0.0.1",
    webhooks: parseWebhooks(env),
    databasePreparedStatements: parseBoolean(env, "DATABASE_PREPARED_STATEMENTS", true),
    tracing: parseTracing(env),
    heapGrowthPercent: parseWholeNumber(env, "HEAP_GROWTH_PERCENT", 50, 0, 1000, "percent"),
    ...overrides,
  };
  return Object.freeze(config);
}

/** Which store a configuration selects, for the start line and the CLI: never a password. */
export function describeStore(config: Pick<Config, "databaseUrl" | "dataDir">): string {
  if (!config.databaseUrl) return `SQLite at ${join(config.dataDir, "phonebook.db")}`;
  try {
    const url = new URL(config.databaseUrl);
    if (url.password) url.password = "***";
    return `PostgreSQL at ${url.toString()}`;
  } catch {
    return "PostgreSQL";
  }
}
