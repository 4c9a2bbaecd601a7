import { randomBytes } from "node:crypto";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Config } from "./config.ts";
import { Authenticator } from "./domain/auth.ts";
import { now } from "./domain/clock.ts";
import { IDEMPOTENCY_WAIT_MS, sweepExpiredIdempotencyKeys } from "./domain/idempotency.ts";
import { CursorCodec } from "./domain/pagination.ts";
import { ApiError, renderNativeError } from "./errors.ts";
import { adminRoutes } from "./http/admin/routes.ts";
import { dashboardRoutes } from "./http/dashboard.ts";
import { toApiError } from "./http/errors.ts";
import { renderGraphError } from "./http/graph/errors.ts";
import { graphRoutes } from "./http/graph/routes.ts";
import { eventBody } from "./http/native/event-representation.ts";
import { nativeRoutes } from "./http/native/routes.ts";
import { NATIVE_FIELDS } from "./http/native/wire.ts";
import { renderPlatformError } from "./http/platform/errors.ts";
import { platformRoutes } from "./http/platform/routes.ts";
import { KAPSO_FIELDS } from "./http/platform/wire.ts";
import { queryCoercionOnRoute } from "./http/query.ts";
import { requestIdOnRoute } from "./http/request-id.ts";
import { instantFormat, withShownSchemas } from "./http/schemas.ts";
import { lazySerializers } from "./http/serializers.ts";
import { clientErrorHandler, registerTransportGuards } from "./http/transport.ts";
import { WEBHOOK_FIELDS } from "./http/webhooks/meta-delivery.ts";
import { whatsappWebhookRoutes } from "./http/webhooks/whatsapp.ts";
import { newId } from "./ids.ts";
import { ImportRunner, type ImportRunnerOptions } from "./jobs/import-runner.ts";
import { SearchIndexMaintainer } from "./jobs/search-index.ts";
import { startThread } from "./jobs/threads.ts";
import { type ThreadWorkerOptions, WebhookThread, type WebhookThreadData } from "./jobs/webhook-thread.ts";
import { WebhookWorker, type WebhookWorkerOptions } from "./jobs/webhook-worker.ts";
import { lazyChildLogger, loggerOptions } from "./logger.ts";
import { Metrics, metricsEnabled, registerMetrics } from "./metrics.ts";
import { MemoryRateLimiter, type RateLimiter } from "./rate-limit/rate-limiter.ts";
import { RedisRateLimiter } from "./rate-limit/redis.ts";
import { getOrInitSetting } from "./store/repositories/settings.ts";
import { hasDeliveryWork } from "./store/repositories/webhooks.ts";
import { createStore, type Store } from "./store/store.ts";

/** What every surface's routes are given: the wired dependencies of one app. */
export interface Services {
  config: Config;
  store: Store;
  authenticator: Authenticator;
  cursors: CursorCodec;
  /** Per-organisation token buckets: memory by default, Redis when REDIS_URL is set. */
  rateLimiter: RateLimiter;
  /** How every write transaction is run (see http/write-transaction.ts). */
  writes: WriteOptions;
}

export interface WriteOptions {
  /** Longest a request waits for a concurrent request holding its Idempotency-Key (spec: 30 s). */
  idempotencyWaitMs: number;
  /**
   * Test-only fault injection: runs inside every write transaction after the
   * write and its idempotency record, just before commit. Throwing here
   * simulates a crash between the write and the response.
   */
  beforeCommit?: ((request: FastifyRequest) => void | Promise<void>) | undefined;
}

declare module "fastify" {
  interface FastifyInstance {
    services: Services;
    /** The app's webhook delivery worker; null when the app was built without jobs. */
    webhookWorker: DeliveryWorker | null;
  }
}

/** Builds the body of an error response; may change the status (e.g. the platform's 422 on duplicates). */
type ErrorRenderer = (error: ApiError, request: FastifyRequest, reply: FastifyReply) => unknown;

/**
 * Errors are shaped like the surface the client was talking to, chosen by path
 * prefix so that failures before routing (unknown routes, bad bodies) match too.
 * Each surface first names the domain's fields in its own words (`ApiError.named`).
 * Longest prefix first; the native envelope is the default.
 */
const ERROR_RENDERERS: Array<{ prefix: string; render: ErrorRenderer }> = [
  {
    prefix: "/platform/",
    render: (error, _request, reply) => renderPlatformError(error.named(KAPSO_FIELDS), reply),
  },
  { prefix: "/meta/", render: (error, request) => renderGraphError(error.named(KAPSO_FIELDS), request.id) },
  {
    prefix: "/webhooks/",
    render: (error, request) => renderNativeError(error.named(WEBHOOK_FIELDS), request.id),
  },
  { prefix: "/v1/", render: (error, request) => renderNativeError(error.named(NATIVE_FIELDS), request.id) },
];

/** The same shapes for an error no request object exists for (Node's HTTP parser refused it). */
function renderBare(error: ApiError, requestId: string, path: string): unknown {
  if (path.startsWith("/platform/")) return { error: error.message, code: error.code };
  if (path.startsWith("/meta/")) return renderGraphError(error, requestId);
  return renderNativeError(error, requestId);
}

function rendererFor(url: string): ErrorRenderer {
  for (const { prefix, render } of ERROR_RENDERERS) if (url.startsWith(prefix)) return render;
  return (error, request) => renderNativeError(error, request.id);
}

export interface BuildOptions {
  /** A store made by the caller (tests); otherwise one is created from the config. */
  store?: Store;
  /** Pino destination stream (tests capture logs with it). */
  logStream?: NodeJS.WritableStream;
  /** Background jobs (the import runner): on by default; false for none, or runner options. */
  jobs?: boolean | ImportRunnerOptions;
  /** A rate limiter made by the caller (tests); otherwise chosen from the config. */
  rateLimiter?: RateLimiter;
  /** Overrides of how writes run (tests: a shorter idempotency wait, fault injection). */
  writes?: Partial<WriteOptions>;
  /** The webhook delivery worker (runs when jobs run): options over the configuration's, or false for none. */
  webhooks?: false | WebhookWorkerOptions;
}

/** How often expired idempotency records are deleted. */
const IDEMPOTENCY_SWEEP_MS = 10 * 60 * 1000;

/** Builds the application: store migrated, routes registered. Never listens. */
export async function buildApp(config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  const store = options.store ?? createStore(config);
  try {
    await store.migrate();
  } catch (error) {
    // A store this call opened is closed again, so a failed start leaves no handle open.
    if (!options.store) await store.close().catch(() => {});
    throw error;
  }
  const cursorSecret =
    config.cursorSecret ??
    (await getOrInitSetting(store.db, "cursor_secret", randomBytes(32).toString("base64url")));
  const app = Fastify({
    logger: loggerOptions(config.logLevel, options.logStream),
    // Requests Node's HTTP parser refuses (431 headers too large, 400 malformed
    // framing, 408 headers too slow) get the error envelope too.
    clientErrorHandler: clientErrorHandler(renderBare, securityHeaders),
    childLoggerFactory: (logger, bindings, childOptions) =>
      lazyChildLogger(logger, bindings, childOptions) as typeof logger,
    genReqId: () => newId("req"),
    requestIdHeader: false,
    bodyLimit: 1024 * 1024,
    // Prototype-pollution keys are kept as plain data and rejected by validation
    // (unknown field, invalid metadata) with a precise code.
    onProtoPoisoning: "ignore",
    onConstructorPoisoning: "ignore",
    // Failures before routing (an undecodable URL) take the same path as every other error.
    frameworkErrors: (error, request, reply) => {
      // No hook runs for these: set what onRequest and onSend would have.
      reply.header("x-request-id", request.id);
      reply.headers(securityHeaders(request.url));
      sendError(error, request, reply);
    },
    // Slow clients (docs/security.md): the headers must arrive within
    // HTTP_HEADERS_TIMEOUT_MS; bodies are timed by the transport guards (a
    // pause between bytes, a total for all but file uploads), so Node's
    // whole-request timeout is off and a long upload lives while bytes flow.
    requestTimeout: 0,
    http: {
      headersTimeout: config.httpHeadersTimeoutMs,
      // How often Node checks the headers timeout; it can only be late by this much.
      connectionsCheckingInterval: Math.min(
        30_000,
        Math.max(50, Math.floor(config.httpHeadersTimeoutMs / 4)),
      ),
    },
    return503OnClosing: true,
    forceCloseConnections: "idle",
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 500 },
    // Response serializers compiled on first use, not all at start (src/http/serializers.ts).
    schemaController: { compilersFactory: { buildSerializer: lazySerializers } },
    ajv: {
      customOptions: {
        removeAdditional: false,
        coerceTypes: false,
        useDefaults: true,
        allErrors: false,
        verbose: true,
      },
      plugins: [addErrorCodeKeyword],
      // After Ajv's formats are added: one definition of an instant (http/schemas.ts).
      onCreate: instantFormat,
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // OpenTelemetry tracing (docs/operations.md), before any hook or route so
  // that every request is covered. Off, the SDK is never even imported.
  if (config.tracing) {
    const { startTracing } = await import("./tracing.ts");
    const tracing = startTracing(config.tracing, store);
    app.addHook("onClose", () => tracing.shutdown());
    await app.register(tracing.plugin);
  }

  const services: Services = {
    config,
    store,
    authenticator: new Authenticator(store.db),
    cursors: new CursorCodec(cursorSecret),
    rateLimiter: options.rateLimiter ?? (await createRateLimiter(config, app.log)),
    writes: { idempotencyWaitMs: IDEMPOTENCY_WAIT_MS, ...options.writes },
  };
  app.decorate("services", services);
  app.decorateRequest("principal", undefined);
  app.removeContentTypeParser("text/plain");
  registerTransportGuards(app, { idleMs: config.httpBodyIdleTimeoutMs, totalMs: config.httpBodyTimeoutMs });

  // Every response carries its request id and the security headers; set once,
  // up front (a callback hook: no promise per request), so errors have them too.
  app.addHook("onRequest", (request, reply, done) => {
    reply.header("x-request-id", request.id);
    reply.headers(securityHeaders(request.url));
    done();
  });
  // Prometheus metrics (GET /metrics), when METRICS_TOKEN or METRICS_PORT is set.
  const metrics = metricsEnabled(config) ? new Metrics(store) : undefined;
  registerMetrics(app, config, metrics);
  // Imports run in the background from start (resuming any a crash interrupted) until close.
  const jobs = options.jobs ?? true;
  // SQLite's trigram index merged into one segment after bulk writes (docs/search.md).
  const searchIndex = jobs === false ? null : new SearchIndexMaintainer(store, { log: app.log });
  const importRunner =
    jobs === false
      ? null
      : new ImportRunner(store, {
          log: app.log,
          ...(metrics && { onRowsCommitted: (rows: number) => metrics.importRows.inc(rows) }),
          onImportFinished: () => searchIndex?.notify(),
          ...(typeof jobs === "object" ? jobs : {}),
        });
  app.decorate("importRunner", importRunner);
  const webhookOptions = {
    timeoutMs: config.webhooks.timeoutMs,
    leaseMs: config.webhooks.leaseMs,
    retryScheduleMs: config.webhooks.retryScheduleMs,
    allowPrivate: config.webhooks.allowPrivate,
    retentionMs: config.webhooks.eventsRetentionDays * 24 * 60 * 60 * 1000,
    pollMs: config.webhooks.pollMs,
    concurrency: config.webhooks.concurrency,
  };
  const onDelivered = metrics && ((lagMs: number) => metrics.webhookLag.observe(lagMs / 1000));
  // The thread opens the API's store on connections of its own (jobs/webhook-thread.ts).
  const threadStore = store.address;
  const webhookWorker: DeliveryWorker | null =
    jobs === false || options.webhooks === false || !config.webhooks.worker
      ? null
      : config.webhooks.thread && threadStore !== undefined
        ? new WebhookThread(
            () =>
              startThread(import.meta.url, "webhook-thread", {
                store: threadStore,
                listenUrl: config.webhooks.listenUrl,
                options: { ...webhookOptions, ...threadOptionsOf(options.webhooks) },
                observeLag: onDelivered !== undefined,
              } satisfies WebhookThreadData),
            {
              log: app.log,
              onDelivered,
              stopTimeoutMs: config.webhooks.timeoutMs + 5000,
              // PostgreSQL: other processes queue deliveries too, and the thread hears their NOTIFY.
              hasWork:
                threadStore.kind === "postgres"
                  ? async () => true
                  : () => hasDeliveryWork(store.db, now() - webhookOptions.retentionMs),
            },
          )
        : new WebhookWorker(store, eventBody, {
            log: app.log,
            ...webhookOptions,
            listenUrl: config.databaseUrl === undefined ? undefined : config.webhooks.listenUrl,
            notifyUrl: config.databaseUrl,
            ...(onDelivered && { onDelivered }),
            ...options.webhooks,
          });
  app.decorate("webhookWorker", webhookWorker);
  app.addHook("onReady", async () => {
    importRunner?.start();
    webhookWorker?.start();
    searchIndex?.start();
  });
  app.addHook("preClose", async () => {
    await importRunner?.stop();
    await webhookWorker?.stop();
    await searchIndex?.stop();
  });
  const sweeper = setInterval(() => {
    sweepExpiredIdempotencyKeys(store, now()).catch((error: unknown) => {
      app.log.warn({ err: error }, "could not delete expired idempotency records");
    });
  }, IDEMPOTENCY_SWEEP_MS);
  sweeper.unref();
  app.addHook("onClose", async () => {
    clearInterval(sweeper);
    if (!options.rateLimiter) await services.rateLimiter.close();
    if (!options.store) await store.close();
    metrics?.stopObserving();
  });

  app.setErrorHandler(sendError);
  // Success bodies whose schema declares `request_id` get it here, once (http/request-id.ts).
  app.addHook("onRoute", requestIdOnRoute);
  // Integers and booleans in query strings are read as such before validation (http/query.ts).
  app.addHook("onRoute", queryCoercionOnRoute);

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split("?")[0] ?? "/";
    const allowed = (["GET", "POST", "PATCH", "PUT", "DELETE"] as const).filter(
      (method) => method !== request.method && app.findRoute({ method, url: path }) !== null,
    );
    if (allowed.length > 0) reply.header("allow", allowed.join(", "));
    const error = notFoundError(request.method, path, allowed);
    reply.status(error.status);
    const body = rendererFor(request.url)(error, request, reply);
    reply.send(body);
  });

  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Phonebook API",
        version: "1",
        description: "Contacts for WhatsApp Business numbers. See README.md and docs/ for the conventions.",
      },
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer" },
          apiKey: { type: "apiKey", in: "header", name: "X-API-Key" },
        },
      },
      security: [{ bearer: [] }, { apiKey: [] }],
    },
    // Batch items are checked one by one by their handler; the document shows their schema.
    transformObject: (documents) =>
      "openapiObject" in documents ? withShownSchemas(documents.openapiObject) : documents.swaggerObject,
  });
  await app.register(swaggerUi, { routePrefix: "/docs", uiConfig: { docExpansion: "list" } });

  await app.register(nativeRoutes, { prefix: "/v1" });
  await app.register(adminRoutes, { prefix: "/admin/v1" });
  // Meta webhook ingestion exists only when both secrets are configured; otherwise 404.
  if (config.metaAppSecret !== undefined && config.metaVerifyToken !== undefined) {
    await app.register(whatsappWebhookRoutes, {
      prefix: "/webhooks",
      appSecret: config.metaAppSecret,
      verifyToken: config.metaVerifyToken,
    });
  }
  await app.register(platformRoutes, { prefix: "/platform/v1" });
  await app.register(graphRoutes, { prefix: "/meta/whatsapp" });
  // The web dashboard at `/` (web/), a client of the /v1 API like any other.
  await app.register(dashboardRoutes);
  return app;
}

async function createRateLimiter(config: Config, log: FastifyInstance["log"]): Promise<RateLimiter> {
  if (!config.redisUrl) return new MemoryRateLimiter();
  const limiter = new RedisRateLimiter({ url: config.redisUrl, prefix: config.redisKeyPrefix, log });
  await limiter.ready();
  return limiter;
}

/**
 * The headers a security scanner expects on a JSON API (OWASP secure headers),
 * set on every response, errors included. Responses carry customer data and
 * are answers to credentialed requests, so no cache may keep them; JSON needs
 * no script, style or frame, so the policy allows nothing. `/docs` (the
 * browsable reference, which runs scripts) keeps the headers that do not
 * break it. HSTS belongs to the TLS terminator in front of the server: the
 * server itself speaks plain HTTP, where browsers ignore it.
 */
const SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-resource-policy": "same-origin",
};
const API_HEADERS = {
  ...SECURITY_HEADERS,
  "cache-control": "no-store",
  "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
};

function securityHeaders(url: string): Record<string, string> {
  return /^\/docs(?:[/?]|$)/.test(url) ? SECURITY_HEADERS : API_HEADERS;
}

/** Renders anything thrown during a request in the shape of the surface its URL belongs to. */
function sendError(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const apiError = toApiError(error);
  if (apiError.status >= 500) {
    request.log.error({ err: apiError.cause ?? error, code: apiError.code }, "request failed");
  }
  if (apiError.headers) reply.headers(apiError.headers);
  // The status is set first: a surface's renderer may change it (the platform answers 409s as 422).
  reply.status(apiError.status);
  const body = rendererFor(request.url)(apiError, request, reply);
  reply.send(body);
}

function notFoundError(method: string, path: string, allowed: string[]): ApiError {
  if (allowed.length > 0) {
    return new ApiError(
      "method_not_allowed",
      `${method} is not allowed on ${path}; use ${allowed.join(", ")}.`,
    );
  }
  return new ApiError("route_not_found", `No route ${method} ${path}.`);
}

/**
 * `x-error-code` on a schema names the error code its validation failure
 * reports (e.g. `invalid_limit`); `x-error-message`, its words after the
 * parameter's name ("must be a whole number from 1 to 100").
 */
function addErrorCodeKeyword<T extends { addKeyword(keyword: string): unknown }>(ajv: T): T {
  ajv.addKeyword("x-error-code");
  ajv.addKeyword("x-error-message");
  ajv.addKeyword("x-shown-as");
  return ajv;
}

/** What the app needs of a delivery worker, in this thread or its own (jobs/webhook-thread.ts). */
export interface DeliveryWorker {
  start(): void;
  stop(): Promise<void>;
  /** There may be new work: look now instead of at the next poll. */
  notify(): void;
  readonly listening: boolean;
}

/** The options a test gives the worker that can cross to a thread (no functions). */
function threadOptionsOf(options: WebhookWorkerOptions | false | undefined): ThreadWorkerOptions {
  if (!options) return {};
  const {
    log: _log,
    random: _random,
    onDelivered: _onDelivered,
    onListenerHealth: _h,
    listenUrl: _l,
    notifyUrl: _n,
    ...rest
  } = options;
  return rest;
}
