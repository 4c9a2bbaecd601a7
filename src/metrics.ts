import { createServer, type Server } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Config } from "./config.ts";
import { constantTimeEqual } from "./domain/auth.ts";
import { ApiError } from "./errors.ts";
import { bucketOf } from "./http/auth.ts";
import { newId } from "./ids.ts";
import { queueFigures } from "./store/repositories/webhooks.ts";
import type { PoolStats, QueryEvent, Store } from "./store/store.ts";

/**
 * Prometheus metrics (docs/operations.md). Off unless METRICS_TOKEN or
 * METRICS_PORT is set: then every response is counted and timed by route
 * pattern (never the raw URL) and store queries are timed. Served at
 * GET /metrics on the API port behind `Authorization: Bearer $METRICS_TOKEN`,
 * or, with METRICS_PORT, only on that port (bound to METRICS_HOST).
 */
export class Metrics {
  readonly registry = new Registry();

  readonly httpRequests = new Counter({
    name: "phonebook_http_requests_total",
    help: "HTTP responses, by method, route pattern and status",
    labelNames: ["method", "route", "status"] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: "phonebook_http_request_duration_seconds",
    help: "Time from request to response, by method, route pattern and status",
    labelNames: ["method", "route", "status"] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly queryDuration = new Histogram({
    name: "phonebook_store_query_duration_seconds",
    help: "Store (SQL) statement durations, by dialect and statement kind",
    labelNames: ["dialect", "operation"] as const,
    buckets: [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30],
    registers: [this.registry],
  });
  readonly queryErrors = new Counter({
    name: "phonebook_store_query_errors_total",
    help: "Store statements that failed (timeouts, lost connections, constraint violations), by statement kind",
    labelNames: ["dialect", "operation"] as const,
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: "phonebook_rate_limit_rejections_total",
    help: "Requests answered 429 because the organisation's bucket was empty, by surface and bucket",
    labelNames: ["surface", "bucket"] as const,
    registers: [this.registry],
  });
  readonly idempotencyReplays = new Counter({
    name: "phonebook_idempotency_replays_total",
    help: "POSTs answered from the recorded response of an earlier request with the same Idempotency-Key",
    labelNames: ["surface"] as const,
    registers: [this.registry],
  });
  readonly metaDeliveries = new Counter({
    name: "phonebook_meta_webhook_deliveries_total",
    help: "Meta webhook deliveries (POST /webhooks/whatsapp): accepted (stored), rejected (bad signature or payload: 4xx), failed (5xx, Meta retries)",
    labelNames: ["outcome", "status"] as const,
    registers: [this.registry],
  });
  readonly webhookLag = new Histogram({
    name: "phonebook_webhook_delivery_lag_seconds",
    help: "Outbound webhooks delivered by this process at their first attempt: time from the event's commit to the recorded 2xx",
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  readonly importRows = new Counter({
    name: "phonebook_import_rows_total",
    help: "Import rows committed by this process's runner (rate() gives rows/s)",
    registers: [this.registry],
  });

  constructor(store: Store) {
    collectDefaultMetrics({ register: this.registry });
    const registry = this.registry;
    new Gauge({
      name: "phonebook_import_jobs",
      help: "Imports of the installation by status (queued, running, completed, failed), read from the store at scrape",
      labelNames: ["status"] as const,
      registers: [registry],
      async collect() {
        this.reset();
        for (const status of ["queued", "running", "completed", "failed"]) this.set({ status }, 0);
        const rows = await store.db
          .selectFrom("imports")
          .select(["status", (eb) => eb.fn.countAll<number | string>().as("count")])
          .groupBy("status")
          .execute();
        for (const row of rows) this.set({ status: row.status }, Number(row.count));
      },
    });
    // The outbound webhook queue, read at scrape from the partial index of pending deliveries.
    let figures: Promise<{ pending: number; oldestDueAt: number | null; at: number }> | undefined;
    const queue = () => {
      // One read serves both gauges of a scrape.
      figures ??= (async () => {
        const at = Date.now();
        try {
          return { ...(await queueFigures(store.db, at)), at };
        } finally {
          setImmediate(() => {
            figures = undefined;
          });
        }
      })();
      return figures;
    };
    new Gauge({
      name: "phonebook_webhook_queue_depth",
      help: "Outbound webhook deliveries pending (due now, waiting for a retry, or held behind an earlier event of their contact)",
      registers: [registry],
      async collect() {
        this.set((await queue()).pending);
      },
    });
    new Gauge({
      name: "phonebook_webhook_queue_lag_seconds",
      help: "Age of the oldest delivery that is due and not yet delivered (0 when none): how far the workers are behind",
      registers: [registry],
      async collect() {
        const { oldestDueAt, at } = await queue();
        this.set(oldestDueAt === null ? 0 : Math.max(0, (at - oldestDueAt) / 1000));
      },
    });
    const pool = store.poolStats;
    if (pool) {
      const gauge = (name: string, help: string, read: (s: PoolStats) => number) =>
        new Gauge({
          name,
          help,
          registers: [registry],
          collect() {
            this.set(read(pool()));
          },
        });
      gauge("phonebook_db_pool_connections", "PostgreSQL pool: open connections (max 10)", (s) => s.total);
      gauge(
        "phonebook_db_pool_idle_connections",
        "PostgreSQL pool: open connections not in use",
        (s) => s.idle,
      );
      gauge(
        "phonebook_db_pool_waiting_requests",
        "PostgreSQL pool: queries waiting for a connection (pool exhausted when above 0 for long)",
        (s) => s.waiting,
      );
      gauge("phonebook_db_pool_max_connections", "PostgreSQL pool: its size", (s) => s.max);
    }
    this.stopObserving = store.observeQueries((event) => this.observeQuery(store.dialect, event));
  }

  /** Stops timing the store's statements (the app's close). */
  readonly stopObserving: () => void;

  private observeQuery(dialect: string, event: QueryEvent): void {
    const labels = { dialect, operation: operationOf(event.sql) };
    this.queryDuration.observe(labels, event.durationMs / 1000);
    if (event.failed) this.queryErrors.inc(labels);
  }

  /** Counts one finished request (the onResponse hook). */
  observeResponse(request: FastifyRequest, reply: FastifyReply): void {
    const route = request.routeOptions.url ?? "unmatched";
    const status = reply.statusCode;
    const labels = { method: request.method, route, status: String(status) };
    this.httpRequests.inc(labels);
    this.httpDuration.observe(labels, reply.elapsedTime / 1000);
    if (status === 429) {
      this.rateLimited.inc({ surface: surfaceOf(route), bucket: bucketOf(request.method) });
    }
    if (reply.getHeader("idempotent-replayed") === "true") {
      this.idempotencyReplays.inc({ surface: surfaceOf(route) });
    }
    if (route === "/webhooks/whatsapp" && request.method === "POST") {
      const outcome = status < 300 ? "accepted" : status < 500 ? "rejected" : "failed";
      this.metaDeliveries.inc({ outcome, status: String(status) });
    }
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** The metrics of `app`, when enabled (see metricsEnabled). */
declare module "fastify" {
  interface FastifyInstance {
    metrics: Metrics | undefined;
  }
}

export function metricsEnabled(config: Pick<Config, "metricsToken" | "metricsPort">): boolean {
  return config.metricsToken !== undefined || config.metricsPort !== undefined;
}

/**
 * Hooks the metrics into `app`: every response is observed, and GET /metrics
 * is served on the API port when METRICS_TOKEN is set and METRICS_PORT is not.
 * Without either, nothing is registered and /metrics answers 404.
 */
export function registerMetrics(app: FastifyInstance, config: Config, metrics: Metrics | undefined): void {
  app.decorate("metrics", metrics);
  if (!metrics) return;
  app.addHook("onResponse", (request, reply, done) => {
    metrics.observeResponse(request, reply);
    done();
  });
  const token = config.metricsToken;
  if (config.metricsPort !== undefined || token === undefined) return;
  app.get("/metrics", { schema: { hide: true } }, async (request, reply) => {
    checkToken(request.headers.authorization, token);
    reply.header("content-type", metrics.contentType);
    return metrics.render();
  });
}

function checkToken(header: string | undefined, token: string): void {
  if (!header) {
    throw new ApiError("missing_api_key", "Send Authorization: Bearer <METRICS_TOKEN>.", {
      param: "Authorization",
    });
  }
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match?.[1] || !constantTimeEqual(match[1], token)) {
    throw new ApiError("invalid_api_key", "The metrics token is not valid.", { param: "Authorization" });
  }
}

/**
 * The separate metrics listener of METRICS_PORT: GET /metrics only (token
 * checked when METRICS_TOKEN is also set); anything else is 404. Errors use
 * the native envelope.
 */
export async function listenMetrics(
  metrics: Metrics,
  options: { port: number; host: string; token: string | undefined },
): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((request, response) => {
    const send = (status: number, code: string, type: string, message: string) => {
      const requestId = newId("req");
      response.writeHead(status, {
        "content-type": "application/json; charset=utf-8",
        "cache-control": "no-store",
        "x-request-id": requestId,
      });
      response.end(JSON.stringify({ error: { type, code, message, request_id: requestId } }));
    };
    const path = (request.url ?? "/").split("?")[0];
    if (path !== "/metrics")
      return send(404, "route_not_found", "not_found", `No route ${request.method} ${path}.`);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return send(
        405,
        "method_not_allowed",
        "invalid_request_error",
        `${request.method} is not allowed; use GET.`,
      );
    }
    if (options.token !== undefined) {
      try {
        checkToken(request.headers.authorization, options.token);
      } catch (error) {
        const e = error as ApiError;
        return send(401, e.code, e.type, e.message);
      }
    }
    metrics.render().then(
      (text) => {
        response.writeHead(200, { "content-type": metrics.contentType, "cache-control": "no-store" });
        response.end(request.method === "HEAD" ? undefined : text);
      },
      () => send(500, "internal_error", "api_error", "The metrics could not be collected."),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  return {
    url: `http://${options.host.includes(":") ? `[${options.host}]` : options.host}:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export function operationOf(sql: string): string {
  const match = /^\s*(?:\/\*.*?\*\/\s*)*([a-z]+)/i.exec(sql);
  const word = match?.[1]?.toLowerCase();
  switch (word) {
    case "select":
    case "insert":
    case "update":
    case "delete":
      return word;
    case "with":
      return "select";
    case "begin":
    case "commit":
    case "rollback":
    case "savepoint":
    case "release":
      return "transaction";
    default:
      return "other";
  }
}

function surfaceOf(route: string): string {
  if (route.startsWith("/v1")) return "native";
  if (route.startsWith("/platform/")) return "platform";
  if (route.startsWith("/meta/")) return "graph";
  if (route.startsWith("/admin/")) return "admin";
  if (route.startsWith("/webhooks/")) return "webhooks";
  return "other";
}
